import type { CreateVmRequest } from '@nqvm/api';
import { BadRequest, DomainError, Unprocessable } from '../../domain/errors.ts';

/** A create request once its images named by `name`, `name:tag` or `name@version` are ids. */
export type ResolvedCreateVmRequest = Omit<
  CreateVmRequest,
  'kernel_image' | 'initrd_image' | 'rootfs_image' | 'kernel_image_id' | 'rootfs_image_id'
> & { kernel_image_id: string; rootfs_image_id: string };

/** Finds the version a name reference means (the name's `latest` when no tag or version is given). */
export type ImageVersionLookup = (
  name: string,
  sel: { tag?: string; version?: number },
) => Promise<{ id: string; kind: string } | undefined>;

const KINDS = ['kernel', 'initrd', 'rootfs'] as const;

/** `name`, `name:tag` (`:latest` is the name's latest) or `name@version`; the schema checked the shape. */
export function parseImageRef(raw: string): { name: string; tag?: string; version?: number } {
  const at = raw.indexOf('@');
  if (at >= 0) return { name: raw.slice(0, at), version: Number(raw.slice(at + 1)) };
  const colon = raw.indexOf(':');
  if (colon < 0) return { name: raw };
  const tag = raw.slice(colon + 1);
  return tag === 'latest' ? { name: raw.slice(0, colon) } : { name: raw.slice(0, colon), tag };
}

/**
 * Turns `kernel_image` / `initrd_image` / `rootfs_image` into their `_id` fields: one of the pair per kind (both is
 * 400 `image_ref_conflict`, neither for kernel or rootfs 400 `image_required`), and a name, tag or version that
 * does not exist is 404 `image_not_found` naming the field, one of another kind 422 `wrong_image_kind`. Readiness
 * is checked after, as for ids.
 */
export async function resolveImageRefs(
  req: CreateVmRequest,
  lookup: ImageVersionLookup,
): Promise<ResolvedCreateVmRequest> {
  const { kernel_image, initrd_image, rootfs_image, ...rest } = req;
  const refs = { kernel: kernel_image, initrd: initrd_image, rootfs: rootfs_image };
  const ids: Record<(typeof KINDS)[number], string | undefined> = {
    kernel: req.kernel_image_id,
    initrd: req.initrd_image_id,
    rootfs: req.rootfs_image_id,
  };
  await Promise.all(
    KINDS.map(async (kind) => {
      const ref = refs[kind];
      const field = `body.${kind}_image`;
      if (ref === undefined) {
        if (ids[kind] === undefined && kind !== 'initrd')
          throw new BadRequest(
            'image_required',
            `a ${kind} image is required: ${kind}_image_id or ${kind}_image`,
            field,
          );
        return;
      }
      if (ids[kind] !== undefined)
        throw new BadRequest(
          'image_ref_conflict',
          `give the ${kind} image by id (${kind}_image_id) or by name (${kind}_image), not both`,
          field,
        );
      const sel = parseImageRef(ref);
      const found = await lookup(sel.name, sel);
      if (!found) {
        const why =
          sel.tag !== undefined
            ? `no version of ${sel.name} is tagged ${sel.tag}`
            : sel.version !== undefined
              ? `${sel.name} has no version ${sel.version}`
              : `no image is named ${sel.name} (or none of its versions is ready)`;
        throw new DomainError(404, 'image_not_found', `image ${ref} does not exist: ${why}`, field);
      }
      if (found.kind !== kind)
        throw new Unprocessable('wrong_image_kind', `image ${ref} is a ${found.kind}, not a ${kind}`, field);
      ids[kind] = found.id;
    }),
  );
  return {
    ...rest,
    kernel_image_id: ids.kernel as string,
    rootfs_image_id: ids.rootfs as string,
    ...(ids.initrd !== undefined ? { initrd_image_id: ids.initrd } : {}),
  };
}
