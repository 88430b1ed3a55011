import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { addAbortSignal, type Readable } from 'node:stream';
import type { CreateImageRequest, Image, ImageKind, ImageSource, ListImagesQuery, UpdateImageRequest } from '@nqvm/api';
import { decodeCursor, encodeCursor, pageBody } from '../../db/keyset.ts';
import { DEFAULT_PROJECT_ID } from '../../db/schema.ts';
import { BadRequest, Conflict, DomainError, NotFound, Unprocessable } from '../../domain/errors.ts';
import type { GuardedResponse, UrlGuard } from '../../security/url-guard.ts';
import type { EventsService } from '../events/events.service.ts';
import type { Tx } from '../operations/operations.repository.ts';
import type { CommandRunner } from './images.exec.ts';
import { type Decoded, type DiskTools, ingestImage, systemDiskTools } from './images.formats.ts';
import { resolveImagePath } from './images.paths.ts';
import { IMAGE_KEYS, type ImageRow, type ImagesRepository, pgCode, pgConstraint } from './images.repository.ts';
import { checkSource } from './images.source.ts';
import { type ImageStore, type Ingested, TooLarge } from './images.store.ts';
import { type OciImportDeps, startOciImport } from './oci/oci.import.ts';

/** Something that references images (templates, VMs): says who uses one, so it is not deleted under them. */
export interface ImageUsage {
  imageUsers(imageId: string): Promise<string[]>;
}

export interface ImagesServiceOptions {
  imageRoot: string | undefined;
  allowImagePaths: boolean;
  maxUploadBytes: number;
  maxImportBytes: number;
  /** Every URL import goes through it: internal addresses refused after DNS and after each redirect. */
  urlGuard: UrlGuard;
  /** An import that receives nothing for this long is aborted. */
  importIdleTimeoutMs?: number;
  /** At most one progress write per import per interval. */
  progressIntervalMs?: number;
  /** qemu-img and the decompressors; the real commands unless a test passes others. */
  diskTools?: DiskTools;
}

export class ImageTooLarge extends DomainError {
  constructor(limit: number, field: string) {
    super(413, 'image_too_large', `the image is larger than the limit of ${limit} bytes`, field, { limit });
  }
}

export function toImage(r: ImageRow): Image {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    tag: r.tag,
    latest: r.latest,
    kind: r.kind,
    description: r.description,
    project_id: r.projectId,
    public: r.public,
    state: r.state,
    sha256: r.sha256,
    size_bytes: r.sizeBytes,
    bytes_done: r.bytesDone,
    bytes_total: r.bytesTotal,
    source: r.source as ImageSource,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

function tagTaken(err: unknown, name: string, tag: string | undefined): never {
  if (pgCode(err) === '23505' && pgConstraint(err) === 'images_name_tag_key')
    throw new Conflict('image_name_taken', `${name}:${tag} exists`, 'body.tag');
  throw err;
}

/** How a stored image differs from what was given, for its event: the given hash, compression and disk format. */
function converted(f: Decoded): Record<string, string> {
  if (!f.compression && !f.format) return {};
  return {
    source_sha256: f.sourceSha256,
    ...(f.compression ? { compression: f.compression } : {}),
    ...(f.format ? { format: f.format } : {}),
  };
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface RunningImport {
  abort: AbortController;
  done: Promise<void>;
}

/** Refuses, in the transaction of its insert, an image past its project's disk quota (quotas feature). */
export interface ImageQuotaCheck {
  imageAdded(tx: Tx, imageId: string): Promise<void>;
}

export class ImagesService {
  private readonly usages: ImageUsage[] = [];
  private quota: ImageQuotaCheck | undefined;
  private readonly imports = new Map<string, RunningImport>();

  constructor(
    private readonly repo: ImagesRepository,
    private readonly store: ImageStore,
    private readonly runner: CommandRunner,
    private readonly events: EventsService,
    private readonly opts: ImagesServiceOptions,
  ) {}

  /** Templates, and later VMs, plug in here so images they reference cannot be deleted. */
  useQuotaCheck(check: ImageQuotaCheck): void {
    this.quota = check;
  }

  addUsage(usage: ImageUsage): void {
    this.usages.push(usage);
  }

  /** Prepares the store and removes imports a dead process left half-done (idle for 10 minutes). */
  async start(): Promise<void> {
    await this.store.init();
    for (const row of await this.repo.deleteStaleImports(new Date(Date.now() - 10 * 60_000)))
      await this.events.record({
        actor: 'system',
        resourceType: 'image',
        resourceId: row.id,
        action: 'import',
        result: 'error',
        detail: { name: row.name, reason: 'the manager stopped during the import' },
      });
  }

  /** Aborts running imports and waits until each has cleaned up. */
  async stop(): Promise<void> {
    const running = [...this.imports.values()];
    for (const r of running) r.abort.abort(new Error('the manager is shutting down'));
    await Promise.allSettled(running.map((r) => r.done));
  }

  /** One page as JSON text (`{items, next_cursor}`), serialised by the database for speed. */
  /** `scope`: the caller's projects (their images and public ones; null: all). */
  async listJson(q: ListImagesQuery, scope: string[] | null = null): Promise<string> {
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor, IMAGE_KEYS);
    const filter = {
      kind: q.kind,
      state: q.state,
      q: q.q,
      name: q.name,
      latest: q.latest,
      projectId: q.project_id,
      projects: scope,
    };
    const page = await this.repo.listJson(filter, q.limit ?? 100, after);
    return pageBody(page.items, page.next ? encodeCursor(page.next) : null);
  }

  async row(id: string): Promise<ImageRow> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('image', id);
    return row;
  }

  async get(id: string): Promise<Image> {
    return toImage(await this.row(id));
  }

  /** Ready images by id, for validating references (templates, VMs). */
  /** `name` (its latest), `name:tag` or `name@version`, as VM create takes them; undefined when there is none. */
  async byReference(name: string, sel: { tag?: string; version?: number }): Promise<ImageRow | undefined> {
    return this.repo.version(name, sel);
  }

  async rows(ids: string[]): Promise<Map<string, ImageRow>> {
    return new Map((await this.repo.getMany([...new Set(ids)])).map((r) => [r.id, r]));
  }

  /** Path and blank sources finish before answering (201); URL imports answer at once while importing (202). */
  async create(req: CreateImageRequest, actor: string): Promise<{ image: Image; status: 201 | 202 }> {
    const src = checkSource(req.source);
    if (src.type === 'path') {
      if (!this.opts.allowImagePaths || !this.opts.imageRoot)
        throw new DomainError(403, 'image_paths_disabled', 'adding images by path is off', 'body.source.type');
      const real = await resolveImagePath(this.opts.imageRoot, src.path);
      const row = await this.insert(
        req.name,
        req.kind,
        req.description,
        { type: 'path', path: src.path },
        req.tag,
        req,
      );
      const image = await this.fill(row, actor, 'create', () =>
        this.intake(createReadStream(real), { limit: Number.MAX_SAFE_INTEGER }),
      );
      return { image, status: 201 };
    }
    if (src.type === 'blank') {
      if (req.kind !== 'volume')
        throw new Unprocessable('blank_needs_volume', 'a blank image must be of kind volume', 'body.kind');
      const row = await this.insert(
        req.name,
        req.kind,
        req.description,
        { type: 'blank', size_mib: src.size_mib },
        req.tag,
        req,
      );
      const image = await this.fill(row, actor, 'create', async () => {
        const tmp = this.store.tempPath();
        try {
          await this.runner.run('truncate', ['-s', `${src.size_mib}M`, tmp]);
          await this.runner.run('mkfs.ext4', ['-F', '-q', tmp]);
          return await this.store.hashTemp(tmp);
        } catch (err) {
          await this.store.discard(tmp);
          throw err;
        }
      });
      return { image, status: 201 };
    }
    if (src.type === 'oci') return { image: await startOciImport(this.ociDeps(actor, req), req, src), status: 202 };
    const url = this.opts.urlGuard.parse(src.url, 'body.source.url');
    // The request is made (redirects followed and checked) before answering, so a refused address is a 400.
    const abort = new AbortController();
    const connectTimeout = setTimeout(
      () => abort.abort(new Error('no answer from the server')),
      this.opts.importIdleTimeoutMs ?? 60_000,
    );
    const opened = await this.opts.urlGuard
      .fetch(url, { field: 'body.source.url', signal: abort.signal })
      .then((res) => ({ res }))
      .catch((err: unknown) => {
        if (err instanceof DomainError) throw err;
        return { err };
      })
      .finally(() => clearTimeout(connectTimeout));
    let row: ImageRow;
    try {
      row = await this.insert(req.name, req.kind, req.description, { type: 'url', url: url.href }, req.tag, req);
    } catch (err) {
      if ('res' in opened) opened.res.body.destroy();
      throw err;
    }
    await this.events.record({
      actor,
      resourceType: 'image',
      resourceId: row.id,
      action: 'import_started',
      result: 'info',
      detail: { name: row.name, url: url.href },
    });
    const done = this.runImport(row, opened, src.sha256?.toLowerCase(), abort.signal, actor).finally(() =>
      this.imports.delete(row.id),
    );
    this.imports.set(row.id, { abort, done });
    return { image: toImage(row), status: 202 };
  }

  /** Streams a request body into the store; the caller passes the declared length to refuse early. */
  async upload(
    q: { name: string; kind: ImageKind; description?: string; tag?: string; project_id?: string; public?: boolean },
    body: Readable,
    declaredLength: number | undefined,
    actor: string,
  ): Promise<Image> {
    const limit = this.opts.maxUploadBytes;
    if (declaredLength !== undefined && declaredLength > limit) throw new ImageTooLarge(limit, 'body');
    const row = await this.insert(q.name, q.kind, q.description, { type: 'upload' }, q.tag, q);
    return this.fill(row, actor, 'upload', async () => {
      try {
        return await this.intake(body, { limit });
      } catch (err) {
        if (err instanceof TooLarge) throw new ImageTooLarge(limit, 'body');
        if (err instanceof DomainError) throw err;
        throw new BadRequest('upload_incomplete', `the upload did not complete: ${reasonOf(err)}`, 'body');
      }
    });
  }

  /** A new name renames every version of the image; the description is this version's. */
  async update(id: string, patch: UpdateImageRequest, actor: string): Promise<Image> {
    const before = await this.row(id);
    if (patch.name !== undefined && patch.name !== before.name && !(await this.repo.renameAll(before.name, patch.name)))
      throw new Conflict('image_name_taken', `an image named ${patch.name} exists`, 'body.name');
    const row = await this.repo.update(id, { description: patch.description, public: patch.public });
    if (!row) throw new NotFound('image', id);
    await this.events.record({
      actor,
      resourceType: 'image',
      resourceId: id,
      action: 'update',
      detail: { ...(patch.name !== undefined ? { name: patch.name, previous_name: before.name } : {}) },
    });
    return toImage(row);
  }

  /** Refused while something uses the image; an importing image has its import aborted. */
  async delete(id: string, actor: string): Promise<void> {
    const row = await this.row(id);
    const running = this.imports.get(id);
    if (running) {
      running.abort.abort(new Error('deleted while importing'));
      await running.done;
      await this.events.record({ actor, resourceType: 'image', resourceId: id, action: 'delete' });
      return;
    }
    const users = (await Promise.all(this.usages.map((u) => u.imageUsers(id)))).flat();
    if (users.length) throw this.inUse(row, users);
    try {
      await this.repo.delete(id);
    } catch (err) {
      if (pgCode(err) === '23503') throw this.inUse(row, []);
      throw err;
    }
    if (row.latest) {
      const next = await this.repo.newestReady(row.name);
      if (next) await this.repo.setLatest(next.id);
    }
    if (row.sha256) {
      const sha = row.sha256;
      await this.store.release(sha, () => this.repo.shaInUse(sha));
    }
    await this.events.record({
      actor,
      resourceType: 'image',
      resourceId: id,
      action: 'delete',
      detail: { name: row.name },
    });
  }

  /** Points the name's `latest` at this version; VMs and templates keep the versions they reference. */
  async rollback(id: string, actor: string): Promise<Image> {
    const row = await this.row(id);
    if (row.state !== 'ready') throw new Conflict('image_importing', `image ${row.name} is still importing`);
    const before = await this.repo.latestOf(row.name);
    const now = await this.repo.setLatest(id);
    if (!now) throw new NotFound('image', id);
    await this.events.record({
      actor,
      resourceType: 'image',
      resourceId: id,
      action: 'rollback',
      detail: { name: row.name, version: row.version, previous_version: before?.version ?? null },
    });
    return toImage(now);
  }

  /** Where a ready image's bytes are. */
  async content(id: string): Promise<{ path: string; size: number; sha256: string }> {
    const row = await this.row(id);
    if (row.state !== 'ready' || !row.sha256 || row.sizeBytes === null)
      throw new Conflict('image_importing', `image ${row.name} is still importing`);
    const path = this.store.pathOf(row.sha256);
    // A row without its file here: another manager stored it and this one does not share its image storage.
    if (
      !(await stat(path).then(
        (s) => s.isFile(),
        () => false,
      ))
    )
      throw new DomainError(
        503,
        'image_content_unavailable',
        `this manager does not hold the bytes of image ${row.name} (managers need shared image storage)`,
      );
    return { path, size: row.sizeBytes, sha256: row.sha256 };
  }

  /** Stores a source as a raw image: decompressed while streaming, converted from qcow2/VMDK/VHDX. */
  private intake(source: Readable, opts: { limit: number; onSourceBytes?: (n: number) => void }): Promise<Decoded> {
    return ingestImage(this.store, this.opts.diskTools ?? systemDiskTools, source, opts);
  }

  private ociDeps(actor: string, req: CreateImageRequest): OciImportDeps {
    return {
      guard: this.opts.urlGuard,
      runner: this.runner,
      store: this.store,
      limit: this.opts.maxImportBytes,
      idleMs: this.opts.importIdleTimeoutMs ?? 60_000,
      progressEveryMs: this.opts.progressIntervalMs ?? 250,
      insert: (source) => this.insert(req.name, req.kind, req.description, source, req.tag, req),
      started: async (row) => {
        await this.events.record({
          actor,
          resourceType: 'image',
          resourceId: row.id,
          action: 'import_started',
          result: 'info',
          detail: { name: row.name, reference: (row.source as { reference?: string }).reference },
        });
      },
      fill: (row, produce) => this.fill(row, actor, 'import', produce),
      progress: (id, done, total) => this.repo.progress(id, done, total),
      track: (id, abort, done) => {
        this.imports.set(id, { abort, done: done.finally(() => this.imports.delete(id)) });
      },
      toImage,
    };
  }

  private inUse(row: ImageRow, users: string[]): Conflict {
    const who = users.length ? `: ${users.join(', ')}` : '';
    return new Conflict('image_in_use', `image ${row.name} version ${row.version} is in use${who}`, undefined, {
      used_by: users,
    });
  }

  /** The name's next version (version 1 of a new name); all versions of a name are of one kind. */
  private async insert(
    name: string,
    kind: ImageKind,
    description: string | undefined,
    source: Record<string, unknown>,
    tag: string | undefined,
    owner: { project_id?: string; public?: boolean },
  ): Promise<ImageRow> {
    const projectId = owner.project_id ?? DEFAULT_PROJECT_ID;
    // A name's versions live in one project (names are global for now).
    const holder = await this.repo.projectOf(name);
    if (holder !== undefined && holder !== projectId)
      throw new Conflict('image_name_taken', `an image named ${name} exists in another project`, 'body.name');
    const existing = await this.repo.kindOf(name);
    if (existing !== undefined && existing !== kind)
      throw new Conflict(
        'image_kind_differs',
        `${name} is a ${existing} image: its versions are all ${existing}`,
        'body.kind',
      );
    // Two imports of one name at once may pick the same version number: the loser takes the next.
    for (let attempt = 0; ; attempt++) {
      try {
        const quota = this.quota;
        return await this.repo.insert(
          {
            name,
            kind,
            description: description ?? '',
            source,
            bytesTotal: null,
            tag,
            projectId,
            public: owner.public ?? false,
          },
          quota && ((tx, row) => quota.imageAdded(tx, row.id)),
        );
      } catch (err) {
        if (attempt < 5 && pgCode(err) === '23505' && pgConstraint(err) === 'images_name_version_key') continue;
        tagTaken(err, name, tag);
      }
    }
  }

  /** Produces the content, stores it and marks the row ready; on any failure leaves no row and no file. */
  private async fill(row: ImageRow, actor: string, action: string, produce: () => Promise<Ingested>): Promise<Image> {
    let file: Ingested | undefined;
    try {
      file = await produce();
      const f = file;
      const ready = await this.store.commit(f, () => this.repo.markReady(row.id, f.sha256, f.size));
      if (!ready) {
        await this.store.release(f.sha256, () => this.repo.shaInUse(f.sha256));
        throw new NotFound('image', row.id);
      }
      await this.events.record({
        actor,
        resourceType: 'image',
        resourceId: row.id,
        action,
        detail: {
          name: row.name,
          kind: row.kind,
          sha256: f.sha256,
          size_bytes: f.size,
          ...('sourceSha256' in f ? converted(f as Decoded) : {}),
        },
      });
      return toImage(ready);
    } catch (err) {
      await this.fail(row, actor, action, err);
      throw err;
    }
  }

  private async fail(row: ImageRow, actor: string, action: string, err: unknown): Promise<void> {
    await this.repo.delete(row.id).catch(() => undefined);
    await this.events.record({
      actor,
      resourceType: 'image',
      resourceId: row.id,
      action,
      result: 'error',
      detail: { name: row.name, reason: reasonOf(err) },
    });
  }

  private async runImport(
    row: ImageRow,
    opened: { res: GuardedResponse } | { err: unknown },
    expected: string | undefined,
    signal: AbortSignal,
    actor: string,
  ): Promise<void> {
    const limit = this.opts.maxImportBytes;
    const idleMs = this.opts.importIdleTimeoutMs ?? 60_000;
    const every = this.opts.progressIntervalMs ?? 250;
    const idle = new AbortController();
    let idleTimer = setTimeout(() => idle.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
    const kick = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(() => idle.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
    };
    const finished = new AbortController();
    const both = AbortSignal.any([signal, idle.signal, finished.signal]);
    let lastWrite = 0;
    let writing: Promise<void> = Promise.resolve();
    try {
      await this.fill(row, actor, 'import', async () => {
        if ('err' in opened) throw new Error(`the server could not be reached: ${reasonOf(opened.err)}`);
        const res = opened.res;
        if (res.status < 200 || res.status > 299) {
          res.body.destroy();
          throw new Error(`the server answered ${res.status} ${res.statusText}`.trim());
        }
        const declared = res.headers['content-length'];
        const total = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
        if (total !== null && total > limit) throw new TooLarge(limit);
        await this.repo.progress(row.id, 0, total);
        const file = await this.intake(addAbortSignal(both, res.body), {
          limit,
          onSourceBytes: (n) => {
            kick();
            const now = Date.now();
            if (now - lastWrite < every) return;
            lastWrite = now;
            writing = writing.then(() => this.repo.progress(row.id, n)).catch(() => undefined);
          },
        }).catch((err: unknown) => {
          if (both.aborted) throw both.reason;
          if (err instanceof TooLarge || err instanceof DomainError) throw err;
          throw new Error(`the download broke off: ${reasonOf(err)}`);
        });
        await writing;
        // The hash asked for is of the bytes as served (compressed, qcow2…), not of the raw image stored.
        if (expected && file.sourceSha256 !== expected) {
          await this.store.discard(file.tmp);
          throw new Error(`sha256 mismatch: expected ${expected}, got ${file.sourceSha256}`);
        }
        return file;
      });
    } catch {
      // fill() recorded the failure event and removed the row.
    } finally {
      clearTimeout(idleTimer);
      // Stops the response body flowing when the import ended early (too large, wrong hash).
      finished.abort();
      if ('res' in opened) opened.res.body.destroy();
    }
  }
}
