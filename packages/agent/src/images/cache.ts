import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';

export interface ImageRef {
  image_id: string;
  sha256: string;
  size_bytes: number;
}

export class ImageFetchFailed extends Error {
  constructor(
    readonly ref: ImageRef,
    message: string,
  ) {
    super(`image ${ref.image_id} (${ref.sha256.slice(0, 12)}): ${message}`);
    this.name = 'ImageFetchFailed';
  }
}

/** Where image bytes come from (the manager in production). */
export type ImageSource = (imageId: string) => Promise<ReadableStream<Uint8Array>>;

const SHA = /^[a-f0-9]{64}$/;

/**
 * Content-addressed cache of images under `<dir>/<sha256>`: a file is only ever renamed into place after
 * its hash checked out, and concurrent requests for one image share one download.
 */
export class ImageCache {
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    readonly dir: string,
    private readonly source: ImageSource,
  ) {}

  pathOf(sha256: string): string {
    if (!SHA.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.dir, sha256);
  }

  /** Local path of the image, downloading and verifying it first if it is not cached yet. */
  ensure(ref: ImageRef): Promise<string> {
    const sha = ref.sha256.toLowerCase();
    const running = this.inflight.get(sha);
    if (running) return running;
    const p = this.fetch({ ...ref, sha256: sha }).finally(() => this.inflight.delete(sha));
    this.inflight.set(sha, p);
    return p;
  }

  private async fetch(ref: ImageRef): Promise<string> {
    const target = this.pathOf(ref.sha256);
    if (
      await stat(target).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return target;
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.tmp-${ref.sha256.slice(0, 12)}-${randomBytes(4).toString('hex')}`);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const body = await this.source(ref.image_id);
      await pipeline(
        Readable.fromWeb(body as WebReadableStream<Uint8Array>),
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            bytes += chunk.length;
            cb(null, chunk);
          },
        }),
        createWriteStream(tmp, { mode: 0o644 }),
      );
      const got = hash.digest('hex');
      if (got !== ref.sha256) throw new Error(`sha256 mismatch: got ${got} after ${bytes} bytes`);
      await rename(tmp, target);
      return target;
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof ImageFetchFailed) throw e;
      throw new ImageFetchFailed(ref, (e as Error).message);
    }
  }
}
