import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** The stream carried more bytes than the limit allows. */
export class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the image is larger than the limit of ${limit} bytes`);
    this.name = 'TooLarge';
  }
}

export interface Ingested {
  tmp: string;
  sha256: string;
  size: number;
}

const SHA = /^[a-f0-9]{64}$/;

/**
 * Content-addressed image files: `<root>/sha256/<aa>/<sha256>`, one file per distinct content, written
 * through `<root>/tmp` and renamed into place. Commits and releases of one hash are serialised in-process.
 */
export class ImageStore {
  private readonly locks = new Map<string, Promise<void>>();

  constructor(readonly root: string) {}

  /** Creates the layout and drops temp files a previous process left behind. */
  async init(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(join(this.root, 'sha256'), { recursive: true });
  }

  get tmpDir(): string {
    return join(this.root, 'tmp');
  }

  tempPath(): string {
    return join(this.tmpDir, randomUUID());
  }

  pathOf(sha256: string): string {
    if (!SHA.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  /** Streams into a temp file, hashing and counting; never holds more than a chunk in memory. */
  async ingest(
    source: Readable,
    opts: { limit: number; onBytes?: (done: number) => void; decode?: (raw: Readable) => Readable },
  ): Promise<Ingested> {
    const tmp = this.tempPath();
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        if (size > opts.limit) return cb(new TooLarge(opts.limit));
        hash.update(chunk);
        opts.onBytes?.(size);
        cb(null, chunk);
      },
    });
    // pipe() rather than pipeline(): on failure the source is left undestroyed so an HTTP request can still be answered.
    const onSourceError = (err: Error) => meter.destroy(err);
    source.once('error', onSourceError);
    source.once('aborted', () => meter.destroy(new Error('the client aborted the transfer')));
    // A decoder (decompression) sits between the source as given and what is hashed and stored.
    const entry = opts.decode ? new PassThrough() : meter;
    source.pipe(entry);
    try {
      if (opts.decode) await pipeline(opts.decode(entry), meter, createWriteStream(tmp, { flags: 'wx' }));
      else await pipeline(meter, createWriteStream(tmp, { flags: 'wx' }));
      if ('complete' in source && source.complete === false) throw new Error('the client aborted the transfer');
    } catch (err) {
      source.unpipe(entry);
      source.off('error', onSourceError);
      await this.discard(tmp);
      throw err;
    }
    return { tmp, sha256: hash.digest('hex'), size };
  }

  /** Hashes a file already in the temp dir (blank volumes). */
  async hashTemp(tmp: string): Promise<Ingested> {
    const hash = createHash('sha256');
    await pipeline(createReadStream(tmp), hash);
    return { tmp, sha256: hash.digest('hex'), size: (await stat(tmp)).size };
  }

  async discard(tmp: string): Promise<void> {
    await rm(tmp, { force: true });
  }

  /** Moves a temp file to its content address (or drops it when that content is already stored), then runs `then`. */
  async commit<T>(file: Ingested, then: () => Promise<T>): Promise<T> {
    return this.withLock(file.sha256, async () => {
      const dest = this.pathOf(file.sha256);
      await mkdir(join(dest, '..'), { recursive: true });
      if (await exists(dest)) await this.discard(file.tmp);
      else await rename(file.tmp, dest);
      return then();
    });
  }

  /** Removes the file of `sha256` unless `stillUsed` says another image references it. */
  async release(sha256: string, stillUsed: () => Promise<boolean>): Promise<boolean> {
    return this.withLock(sha256, async () => {
      if (await stillUsed()) return false;
      await unlink(this.pathOf(sha256)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return true;
    });
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const chained = prev.then(() => mine);
    this.locks.set(key, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === chained) this.locks.delete(key);
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
