import type { CreateImageRequest, Image, OciImageSource } from '@nqvm/api';
import { BadRequest, Unprocessable } from '../../../domain/errors.ts';
import type { UrlGuard } from '../../../security/url-guard.ts';
import type { CommandRunner } from '../images.exec.ts';
import type { ImageRow } from '../images.repository.ts';
import type { ImageStore, Ingested } from '../images.store.ts';
import { resolveImage } from './oci.manifest.ts';
import { buildRootfs } from './oci.pull.ts';
import { parseReference } from './oci.reference.ts';
import { RegistryClient, RegistryUnavailable } from './oci.registry.ts';

export interface OciSourceSpec {
  type: 'oci';
  reference: string;
  username?: string;
  password?: string;
}

/** What a pull borrows from the images service: its row, store and import bookkeeping. */
export interface OciImportDeps {
  guard: UrlGuard;
  runner: CommandRunner;
  store: ImageStore;
  limit: number;
  idleMs: number;
  progressEveryMs: number;
  insert(source: OciImageSource): Promise<ImageRow>;
  started(row: ImageRow): Promise<void>;
  /** Runs `produce`, commits its file and marks the row ready; on failure removes the row and records why. */
  fill(row: ImageRow, produce: () => Promise<Ingested>): Promise<Image>;
  progress(id: string, done: number, total: number): Promise<void>;
  /** Registers the running pull so deleting the image or stopping the manager aborts it. */
  track(id: string, abort: AbortController, done: Promise<void>): void;
  toImage(row: ImageRow): Image;
}

/**
 * Pulls an OCI image into a rootfs image. The reference, the credentials and the manifests are checked before
 * answering (a wrong password is a 400, an unknown tag a 422, nothing stored); the layers are pulled after (202),
 * with progress, and a failed or cancelled pull leaves neither row nor file.
 */
export async function startOciImport(deps: OciImportDeps, req: CreateImageRequest, src: OciSourceSpec): Promise<Image> {
  if (req.kind !== 'rootfs')
    throw new Unprocessable('oci_needs_rootfs', 'an OCI image becomes a rootfs image', 'body.kind');
  if ((src.username === undefined) !== (src.password === undefined))
    throw new BadRequest(
      'invalid_source',
      'registry credentials need both username and password',
      src.username === undefined ? 'body.source.username' : 'body.source.password',
    );
  const reference = parseReference(src.reference);
  const abort = new AbortController();
  const creds = src.username !== undefined ? { username: src.username, password: src.password ?? '' } : undefined;
  const client = new RegistryClient(deps.guard, reference, creds, abort.signal);
  const timer = setTimeout(
    () => abort.abort(new RegistryUnavailable('the registry did not answer in time')),
    deps.idleMs,
  );
  const resolved = await resolveImage(client, reference)
    .catch((err: unknown) => {
      throw abort.signal.aborted ? abort.signal.reason : err;
    })
    .finally(() => clearTimeout(timer));
  const row = await deps.insert({
    type: 'oci',
    reference: reference.canonical,
    digest: resolved.digest,
    config: resolved.config,
  });
  await deps.started(row);

  let idle = setTimeout(() => abort.abort(new Error(`no data for ${deps.idleMs} ms`)), deps.idleMs);
  const kick = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort.abort(new Error(`no data for ${deps.idleMs} ms`)), deps.idleMs);
  };
  let lastWrite = 0;
  let writing: Promise<void> = Promise.resolve();
  const done = deps
    .fill(row, async () => {
      const file = await buildRootfs(client, resolved.layers, {
        store: deps.store,
        runner: deps.runner,
        signal: abort.signal,
        limit: deps.limit,
        onData: kick,
        onProgress: (n, total) => {
          const now = Date.now();
          if (n !== 0 && n !== total && now - lastWrite < deps.progressEveryMs) return;
          lastWrite = now;
          writing = writing.then(() => deps.progress(row.id, n, total)).catch(() => undefined);
        },
      }).catch((err: unknown) => {
        throw abort.signal.aborted ? abort.signal.reason : err;
      });
      await writing;
      return file;
    })
    .then(
      () => undefined,
      // fill() recorded the failure and removed the row.
      () => undefined,
    )
    .finally(() => clearTimeout(idle));
  deps.track(row.id, abort, done);
  return deps.toImage(row);
}
