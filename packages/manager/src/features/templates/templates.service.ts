import type { ImageKind, Template, TemplateRequest, VmSpec } from '@nqvm/api';
import { DEFAULT_PROJECT_ID } from '../../db/schema.ts';
import { BadRequest, Conflict, NotFound, Unprocessable } from '../../domain/errors.ts';
import type { EventsService } from '../events/events.service.ts';
import { pgCode } from '../images/images.repository.ts';
import type { ImagesService, ImageUsage } from '../images/images.service.ts';
import type { TemplateRow, TemplatesRepository } from './templates.repository.ts';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/;

interface ImageRef {
  id: string;
  kinds: ImageKind[];
  field: string;
}

export function toTemplate(r: TemplateRow): Template {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    spec: r.spec as VmSpec,
    project_id: r.projectId,
    public: r.public,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

/** The images a spec references, each with the kinds it may be and the request field that names it. */
export function imageRefs(spec: VmSpec): ImageRef[] {
  const refs: ImageRef[] = [
    { id: spec.kernel_image_id, kinds: ['kernel'], field: 'body.spec.kernel_image_id' },
    { id: spec.rootfs_image_id, kinds: ['rootfs'], field: 'body.spec.rootfs_image_id' },
  ];
  if (spec.initrd_image_id)
    refs.push({ id: spec.initrd_image_id, kinds: ['initrd'], field: 'body.spec.initrd_image_id' });
  spec.drives?.forEach((d, i) => {
    if ((d.image_id === undefined) === (d.size_mib === undefined))
      throw new BadRequest(
        'invalid_drive',
        'a drive needs exactly one of image_id or size_mib',
        `body.spec.drives.${i}`,
      );
    if (d.image_id) refs.push({ id: d.image_id, kinds: ['volume', 'rootfs'], field: `body.spec.drives.${i}.image_id` });
  });
  return refs;
}

export class TemplatesService implements ImageUsage {
  constructor(
    private readonly repo: TemplatesRepository,
    private readonly images: ImagesService,
    private readonly events: EventsService,
  ) {}

  async imageUsers(imageId: string): Promise<string[]> {
    return (await this.repo.namesUsingImage(imageId)).map((n) => `template:${n}`);
  }

  /** By name; `projects`: only theirs and public ones (null: all); `projectId`: only that project's. */
  async list(
    limit: number,
    cursor?: string,
    scope: { projects?: string[] | null; projectId?: string } = {},
  ): Promise<{ items: Template[]; next_cursor: string | null }> {
    let after: string | undefined;
    if (cursor !== undefined) {
      after = Buffer.from(cursor, 'base64url').toString('utf8');
      if (!NAME.test(after)) throw new BadRequest('invalid_cursor', 'cursor is not valid', 'query.cursor');
    }
    const rows = await this.repo.list(limit + 1, after, scope);
    const items = rows.slice(0, limit).map(toTemplate);
    const last = items[items.length - 1];
    return { items, next_cursor: rows.length > limit && last ? Buffer.from(last.name).toString('base64url') : null };
  }

  async get(id: string): Promise<Template> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('template', id);
    return toTemplate(row);
  }

  /** A new template in `req.project_id` (resolved by the caller; default: the default project). */
  async create(req: TemplateRequest, actor: string): Promise<Template> {
    const projectId = req.project_id ?? DEFAULT_PROJECT_ID;
    const values = { ...(await this.validate(req, projectId)), projectId, public: req.public ?? false };
    const row = await this.repo.insert(values).catch((err) => this.writeError(err, req.name));
    await this.events.record({
      actor,
      resourceType: 'template',
      resourceId: row.id,
      action: 'create',
      detail: { name: row.name },
    });
    return toTemplate(row);
  }

  async replace(id: string, req: TemplateRequest, actor: string): Promise<Template> {
    const old = await this.repo.get(id);
    if (!old) throw new NotFound('template', id);
    const values = { ...(await this.validate(req, old.projectId)), public: req.public ?? old.public };
    const row = await this.repo.replace(id, values).catch((err) => this.writeError(err, req.name));
    if (!row) throw new NotFound('template', id);
    await this.events.record({
      actor,
      resourceType: 'template',
      resourceId: id,
      action: 'update',
      detail: { name: row.name },
    });
    return toTemplate(row);
  }

  async delete(id: string, actor: string): Promise<void> {
    const row = await this.repo.delete(id);
    if (!row) throw new NotFound('template', id);
    await this.events.record({
      actor,
      resourceType: 'template',
      resourceId: id,
      action: 'delete',
      detail: { name: row.name },
    });
  }

  /** Every referenced image must exist, be ready and be of the kind its field needs. */
  private async validate(
    req: TemplateRequest,
    projectId: string,
  ): Promise<{ name: string; description: string; spec: VmSpec; imageIds: string[] }> {
    const spec: VmSpec = { ...req.spec, vmm: req.spec.vmm ?? 'qemu' };
    const refs = imageRefs(spec);
    const found = await this.images.rows(refs.map((r) => r.id));
    for (const ref of refs) {
      const img = found.get(ref.id);
      // An image of another project, unless public, is answered like a missing one.
      if (!img || (img.projectId !== projectId && !img.public))
        throw new Unprocessable('unknown_image', `image ${ref.id} does not exist`, ref.field);
      if (!ref.kinds.includes(img.kind))
        throw new Unprocessable(
          'image_wrong_kind',
          `image ${img.name} is a ${img.kind}, expected ${ref.kinds.join(' or ')}`,
          ref.field,
        );
      if (img.state !== 'ready')
        throw new Unprocessable('image_not_ready', `image ${img.name} is still importing`, ref.field);
    }
    return { name: req.name, description: req.description ?? '', spec, imageIds: [...new Set(refs.map((r) => r.id))] };
  }

  private writeError(err: unknown, name: string): never {
    if (pgCode(err) === '23505')
      throw new Conflict('template_name_taken', `a template named ${name} exists`, 'body.name');
    if (pgCode(err) === '23503')
      throw new Unprocessable('unknown_image', 'an image of the spec was deleted meanwhile', 'body.spec');
    throw err;
  }
}
