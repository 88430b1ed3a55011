import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

const SHA256 = /^[0-9a-f]{64}$/;

/**
 * One ready-made copy of each base image a VM was made from, so the next VM's disk is a rename instead of a copy
 * on the boot path; the copy that replaces it is made in the background. A spare is complete or absent: it is
 * copied under a temporary name and renamed when done. Costs one extra (sparse) copy of each base image in use.
 */
export class SpareDisks {
  private readonly making = new Map<string, Promise<void>>();
  private swept: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    private readonly copy: (from: string, to: string) => Promise<void>,
    private readonly onError: (err: unknown, sha256: string) => void = () => undefined,
  ) {}

  /**
   * Puts a copy of `base` (content hash `sha256`) at `dest`: the spare when one is ready, else a copy made now.
   * Either way a spare for the next VM is made once `after` settles (the boot's launch: the copy would otherwise
   * take CPU and disk from the commands on the boot path). Returns whether the spare was used.
   */
  async provide(
    sha256: string,
    base: string,
    dest: string,
    after: Promise<unknown> = Promise.resolve(),
  ): Promise<boolean> {
    if (!SHA256.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    let used = false;
    if (!this.making.has(sha256)) {
      try {
        await rename(this.pathOf(sha256), dest);
        used = true;
      } catch {
        // None ready (or on another filesystem): copy below.
      }
    }
    if (!used) await this.copy(base, dest);
    this.refill(sha256, base, after);
    return used;
  }

  /** Settles when no spare is being made (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.making.size) await Promise.allSettled([...this.making.values()]);
  }

  private pathOf(sha256: string): string {
    return path.join(this.dir, `${sha256}.ext4`);
  }

  private refill(sha256: string, base: string, after: Promise<unknown>): void {
    if (this.making.has(sha256)) return;
    const tmp = path.join(this.dir, `.tmp-${sha256.slice(0, 16)}-${randomBytes(4).toString('hex')}`);
    const made = (async () => {
      await after.catch(() => undefined);
      await this.sweep();
      await this.copy(base, tmp);
      await rename(tmp, this.pathOf(sha256));
    })()
      .catch(async (err) => {
        await rm(tmp, { force: true });
        this.onError(err, sha256);
      })
      .finally(() => this.making.delete(sha256));
    this.making.set(sha256, made);
  }

  /** Temporary copies an earlier agent left half-made; every copy of this agent waits for this first. */
  private sweep(): Promise<void> {
    this.swept ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      for (const n of await readdir(this.dir))
        if (n.startsWith('.tmp-')) await rm(path.join(this.dir, n), { force: true });
    })();
    return this.swept;
  }
}
