import { createWriteStream } from 'node:fs';
import {
  chmod,
  chown,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  rm,
  symlink,
  utimes,
} from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TarEntry } from './oci.tar.ts';

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';

/** `a/../b/./c` → `b/c`; never leaves the root (`..` at the top stays at the top). */
export function cleanPath(p: string): string {
  return posix.normalize(`/${p}`).slice(1).replace(/\/$/, '');
}

/**
 * The host path of `rel` inside `root`, every symlink on the way resolved as if `root` were `/` (an absolute
 * target starts again at `root`, `..` stops at it), so no entry of an image can reach outside its tree.
 * The last component is followed only when `followLast` is set.
 */
export async function resolveInRoot(root: string, rel: string, followLast: boolean): Promise<string> {
  const queue = cleanPath(rel).split('/').filter(Boolean);
  const stack: string[] = [];
  let links = 0;
  while (queue.length) {
    const part = queue.shift()!;
    if (part === '..') {
      stack.pop();
      continue;
    }
    if (part === '.') continue;
    if (queue.length === 0 && !followLast) {
      stack.push(part);
      break;
    }
    const host = posix.join(root, ...stack, part);
    const st = await lstat(host).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++links > 40) throw new Error(`too many symbolic links resolving ${rel}`);
      const target = await readlink(host);
      if (target.startsWith('/')) stack.length = 0;
      queue.unshift(...target.split('/').filter(Boolean));
      continue;
    }
    stack.push(part);
  }
  return posix.join(root, ...stack);
}

/**
 * Applies image layers, lowest first, to a directory: files, directories, links with their owners and modes;
 * `.wh.NAME` removes NAME from the layers below, `.wh..wh..opq` empties its directory of what they put there.
 * Whiteouts take effect when their layer ends, so they never touch what their own layer wrote.
 */
export class LayerApplier {
  private touched = new Set<string>();
  private whiteouts: string[] = [];
  private opaques: string[] = [];
  /** Bytes of file content written over all layers (the caller's limit on unpacked size). */
  written = 0;

  constructor(
    readonly root: string,
    private readonly opts: { limit: number; onSkipped?: (path: string, why: string) => void },
  ) {}

  beginLayer(): void {
    this.touched = new Set();
    this.whiteouts = [];
    this.opaques = [];
  }

  private touch(rel: string): void {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) this.touched.add(parts.slice(0, i).join('/'));
  }

  async entry(e: TarEntry, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = cleanPath(e.path);
    if (rel === '') return;
    const dir = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);
    const base = posix.basename(rel);
    if (base === OPAQUE) {
      this.opaques.push(dir);
      return;
    }
    if (base.startsWith(WHITEOUT)) {
      if (!base.startsWith(`${WHITEOUT}${WHITEOUT}`))
        this.whiteouts.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
      return;
    }
    if (e.type === 'other') {
      this.opts.onSkipped?.(rel, 'device nodes and fifos are not unpacked');
      return;
    }
    const parent = await resolveInRoot(this.root, dir, true);
    await mkdir(parent, { recursive: true, mode: 0o755 });
    const target = posix.join(parent, base);
    const existing = await lstat(target).catch(() => undefined);
    this.touch(rel);
    if (e.type === 'dir') {
      if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
      if (!existing?.isDirectory()) await mkdir(target, { mode: 0o700 });
      await chown(target, e.uid, e.gid).catch(ignorePerm);
      await chmod(target, e.mode);
      return;
    }
    if (existing) await rm(target, { recursive: true, force: true });
    if (e.type === 'symlink') {
      await symlink(e.linkname, target);
      await lchown(target, e.uid, e.gid).catch(ignorePerm);
      await lutimes(target, e.mtime, e.mtime).catch(() => undefined);
      return;
    }
    if (e.type === 'hardlink') {
      const from = cleanPath(e.linkname);
      const source = await resolveInRoot(this.root, from, false);
      await link(source, target);
      return;
    }
    this.written += e.size;
    if (this.written > this.opts.limit) throw new UnpackTooLarge(this.opts.limit);
    await pipeline(Readable.from(body), createWriteStream(target, { flags: 'wx', mode: 0o600 }));
    await chown(target, e.uid, e.gid).catch(ignorePerm);
    // chown clears set-id bits: the mode goes on after it.
    await chmod(target, e.mode);
    await utimes(target, e.mtime, e.mtime);
  }

  /** Applies the layer's whiteouts to what the layers below left. */
  async endLayer(): Promise<void> {
    for (const w of this.whiteouts) {
      const host = await resolveInRoot(this.root, w, false);
      if (await lstat(host).catch(() => undefined)) await this.prune(w, host);
    }
    for (const d of this.opaques) {
      const host = await resolveInRoot(this.root, d, true);
      const st = await lstat(host).catch(() => undefined);
      if (!st?.isDirectory()) continue;
      for (const child of await readdir(host)) await this.prune(d ? `${d}/${child}` : child, posix.join(host, child));
    }
  }

  /** Removes what this layer did not write; descends into directories it wrote into. */
  private async prune(rel: string, host: string): Promise<void> {
    if (!this.touched.has(rel)) {
      await rm(host, { recursive: true, force: true });
      return;
    }
    const st = await lstat(host);
    if (!st.isDirectory()) return;
    for (const child of await readdir(host)) await this.prune(`${rel}/${child}`, posix.join(host, child));
  }
}

export class UnpackTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the unpacked image is larger than the limit of ${limit} bytes`);
    this.name = 'UnpackTooLarge';
  }
}

function ignorePerm(err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPERM') throw err;
}
