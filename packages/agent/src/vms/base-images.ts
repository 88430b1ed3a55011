import type { CommandRunner } from '../host/exec.ts';
import { type Ext4DirEntry, Ext4Image, type Ext4Stat } from '../rootfs/index.ts';

/**
 * A cached base rootfs, read once: its stats, files, links and directory listings stay memoised for every
 * later VM made from it (the base is never written, and its path is content-addressed by sha256).
 */
export class BaseImageReads extends Ext4Image {
  private readonly prefetched = new Set<string>();
  private readonly links = new Map<string, Promise<string>>();
  private readonly dirs = new Map<string, Promise<Ext4DirEntry[]>>();
  private readonly stats = new Map<string, Promise<Ext4Stat | null>>();
  private readonly files = new Map<string, Promise<Buffer>>();

  override async prefetch(paths: readonly string[], read: readonly string[] = []): Promise<void> {
    const missing = (p: string) => !this.prefetched.has(p);
    const want = paths.filter(missing);
    const wantRead = read.filter(missing);
    if (!want.length && !wantRead.length) return;
    await super.prefetch(want, wantRead);
    for (const p of [...want, ...wantRead]) this.prefetched.add(p);
  }

  override stat(path: string): Promise<Ext4Stat | null> {
    return memo(this.stats, path, () => super.stat(path));
  }

  override async readFile(path: string): Promise<Buffer> {
    return Buffer.from(await memo(this.files, path, () => super.readFile(path)));
  }

  override readLink(path: string): Promise<string> {
    return memo(this.links, path, () => super.readLink(path));
  }

  override listDir(path: string): Promise<Ext4DirEntry[]> {
    return memo(this.dirs, path, () => super.listDir(path));
  }

  override invalidate(): void {
    throw new Error(`base image ${this.path} is read-only`);
  }
}

function memo<T>(cache: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let p = cache.get(key);
  if (!p) {
    p = load();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/**
 * A VM's fresh copy of a base image: until its first write every read is answered by the base's memo (the
 * bytes are identical), so preparing a VM costs one copy and one `debugfs -w` run.
 */
export class FreshCopy extends Ext4Image {
  private written = false;

  constructor(
    path: string,
    runner: CommandRunner,
    private readonly base: BaseImageReads,
  ) {
    super(path, runner);
  }

  override prefetch(paths: readonly string[], read: readonly string[] = []): Promise<void> {
    return this.written ? super.prefetch(paths, read) : this.base.prefetch(paths, read);
  }

  override stat(path: string): Promise<Ext4Stat | null> {
    return this.written ? super.stat(path) : this.base.stat(path);
  }

  override readFile(path: string): Promise<Buffer> {
    return this.written ? super.readFile(path) : this.base.readFile(path);
  }

  override readLink(path: string): Promise<string> {
    return this.written ? super.readLink(path) : this.base.readLink(path);
  }

  override listDir(path: string): Promise<Ext4DirEntry[]> {
    return this.written ? super.listDir(path) : this.base.listDir(path);
  }

  override invalidate(): void {
    this.written = true;
    super.invalidate();
  }
}

/** One {@link BaseImageReads} per base image, keyed by its sha256. */
export class BaseImages {
  private readonly bases = new Map<string, BaseImageReads>();

  constructor(private readonly runner: CommandRunner) {}

  /** An editor for `copy`, a fresh copy of the base image at `basePath` whose content hash is `sha256`. */
  copyOf(sha256: string, basePath: string, copy: string): FreshCopy {
    let base = this.bases.get(sha256);
    if (!base || base.path !== basePath) {
      base = new BaseImageReads(basePath, this.runner);
      this.bases.set(sha256, base);
    }
    return new FreshCopy(copy, this.runner, base);
  }
}
