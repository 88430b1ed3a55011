import { writeFileSync } from 'node:fs';
import { stat as hostStat, symlink as hostSymlink, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandRunner } from '../host/exec.ts';
import { assertGuestPath, assertLinkTarget, GuestPathError, SAFE_HOST_PATH } from './guest-path.ts';

export { copyImage, resizeImage } from './disk-image.ts';
export { assertGuestPath, GuestPathError } from './guest-path.ts';

/** debugfs reported one or more errors (it usually exits 0 anyway). */
export class Ext4CommandError extends Error {
  constructor(
    readonly image: string,
    readonly errors: readonly { step: string; message: string }[],
  ) {
    super(`debugfs on ${image}: ${errors.map((e) => (e.step ? `[${e.step}] ${e.message}` : e.message)).join('; ')}`);
    this.name = 'Ext4CommandError';
  }
}

/** A fresh temp dir whose path can appear in a debugfs command (TMPDIR could contain anything). */
async function safeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'nqvm-ext4-'));
  if (!SAFE_HOST_PATH.test(dir)) {
    await rm(dir, { recursive: true, force: true });
    throw new GuestPathError(dir, 'temp dir path unsafe for debugfs');
  }
  return dir;
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export type Ext4FileType = 'regular' | 'directory' | 'symlink' | 'other';

export interface Ext4Stat {
  type: Ext4FileType;
  /** Permission bits only (e.g. 0o644). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

export interface Ext4DirEntry {
  name: string;
  type: Ext4FileType;
  mode: number;
  uid: number;
  gid: number;
}

export interface Ownership {
  mode?: number;
  uid?: number;
  gid?: number;
}

function typeFromMode(mode: number): Ext4FileType {
  const fmt = mode & 0o170000;
  if (fmt === 0o100000) return 'regular';
  if (fmt === 0o040000) return 'directory';
  if (fmt === 0o120000) return 'symlink';
  return 'other';
}

const NOT_FOUND = /File not found by ext2_lookup/;

function parseStat(image: string, path: string, stdout: string): Ext4Stat {
  const mode = /Mode:\s+(\d+)/.exec(stdout);
  const type = /Type:\s+(\w+)/.exec(stdout);
  const owner = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(stdout);
  const size = /Size:\s+(\d+)/.exec(stdout);
  if (!mode || !type || !owner || !size)
    throw new Ext4CommandError(image, [{ step: 'stat', message: `unparsable stat output for ${path}` }]);
  const t = type[1];
  return {
    type: t === 'regular' || t === 'directory' || t === 'symlink' ? t : 'other',
    mode: Number.parseInt(mode[1] ?? '0', 8),
    uid: Number(owner[1]),
    gid: Number(owner[2]),
    size: Number(size[1]),
  };
}

function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^debugfs \d+\.\d+/.test(l));
}

/** Read-only view of a guest filesystem; what init detection and account editing need. */
export interface RootfsReader {
  exists(path: string): Promise<boolean>;
  stat(path: string): Promise<Ext4Stat | null>;
  readLink(path: string): Promise<string>;
  readText(path: string): Promise<string>;
}

/**
 * Edits an ext4 image in place with e2fsprogs' debugfs — no loop mount, no root-only kernel features.
 * Reads run `debugfs -R`; writes are collected in an {@link Ext4Batch} and applied by one `debugfs -w -f`.
 */
export class Ext4Image implements RootfsReader {
  private readonly statCache = new Map<string, Ext4Stat | null>();
  private readonly fileCache = new Map<string, Buffer>();

  constructor(
    readonly path: string,
    private readonly runner: CommandRunner,
  ) {}

  private async request(command: string): Promise<{ stdout: string; errors: string[] }> {
    const res = await this.runner.run('debugfs', ['-R', command, '--', this.path]);
    const errors = errorLines(res.stderr);
    if (res.code !== 0 && errors.length === 0) errors.push(`exited ${res.code}`);
    return { stdout: res.stdout, errors };
  }

  async stat(path: string): Promise<Ext4Stat | null> {
    assertGuestPath(path);
    const cached = this.statCache.get(path);
    if (cached !== undefined) return cached;
    const { stdout, errors } = await this.request(`stat ${path}`);
    if (errors.some((e) => NOT_FOUND.test(e))) return null;
    if (errors.length)
      throw new Ext4CommandError(
        this.path,
        errors.map((message) => ({ step: 'stat', message })),
      );
    return parseStat(this.path, path, stdout);
  }

  /**
   * Stats many paths, and reads the regular files among `read`, in one debugfs run (each run costs tens of
   * milliseconds); later stat/read calls are answered from this until the next write.
   */
  async prefetch(paths: readonly string[], read: readonly string[] = []): Promise<void> {
    const all = [...new Set([...paths, ...read])].map(assertGuestPath);
    const dir = await safeTempDir();
    try {
      const cmds = all.map((p) => `stat ${p}`);
      for (const [i, p] of read.entries()) cmds.push(`dump ${p} ${dir}/r${i}`);
      await writeFile(join(dir, 'commands'), `${cmds.join('\n')}\n`);
      const res = await this.runner.run('debugfs', ['-f', join(dir, 'commands'), '--', this.path]);
      const unexpected = errorLines(res.stderr).filter((e) => !NOT_FOUND.test(e));
      if (res.code !== 0 || unexpected.length) {
        throw new Ext4CommandError(
          this.path,
          (unexpected.length ? unexpected : [`exited ${res.code}`]).map((message) => ({ step: 'prefetch', message })),
        );
      }
      const sections = new Map<string, string>();
      let current: string | undefined;
      for (const line of res.stdout.split('\n')) {
        const echo = /^debugfs: (\S+) (\S+)/.exec(line);
        if (echo) {
          current = echo[1] === 'stat' ? (echo[2] ?? '') : undefined;
          if (current !== undefined) sections.set(current, '');
        } else if (current !== undefined) sections.set(current, `${sections.get(current)}${line}\n`);
      }
      for (const p of all) {
        const out = sections.get(p);
        if (out === undefined)
          throw new Ext4CommandError(this.path, [{ step: 'prefetch', message: `no answer for ${p}` }]);
        this.statCache.set(p, out.includes('Inode:') ? parseStat(this.path, p, out) : null);
      }
      for (const [i, p] of read.entries()) {
        if (this.statCache.get(p)?.type === 'regular') this.fileCache.set(p, await readFile(join(dir, `r${i}`)));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Drops prefetched answers; called after every write. */
  invalidate(): void {
    this.statCache.clear();
    this.fileCache.clear();
  }

  async exists(path: string): Promise<boolean> {
    return (await this.stat(path)) !== null;
  }

  /** The target of a symlink (fast links from `stat`, slow links by reading their data block). */
  async readLink(path: string): Promise<string> {
    const { stdout, errors } = await this.request(`stat ${assertGuestPath(path)}`);
    if (errors.length)
      throw new Ext4CommandError(
        this.path,
        errors.map((message) => ({ step: 'readlink', message })),
      );
    if (!/Type:\s+symlink/.test(stdout))
      throw new Ext4CommandError(this.path, [{ step: 'readlink', message: `${path} is not a symlink` }]);
    const fast = /Fast link dest: "(.*)"/.exec(stdout);
    if (fast) return fast[1] ?? '';
    return (await this.readFile(path)).toString('utf8');
  }

  /** Exact bytes of a file (via `dump` to a temp file, so binary content survives). */
  async readFile(path: string): Promise<Buffer> {
    assertGuestPath(path);
    const cached = this.fileCache.get(path);
    if (cached) return Buffer.from(cached);
    const dir = await safeTempDir();
    try {
      const out = join(dir, 'out');
      const { errors } = await this.request(`dump ${path} ${out}`);
      if (errors.length)
        throw new Ext4CommandError(
          this.path,
          errors.map((message) => ({ step: 'read', message })),
        );
      return await readFile(out);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async readText(path: string): Promise<string> {
    return (await this.readFile(path)).toString('utf8');
  }

  async listDir(path: string): Promise<Ext4DirEntry[]> {
    const { stdout, errors } = await this.request(`ls -p ${assertGuestPath(path)}`);
    if (errors.length)
      throw new Ext4CommandError(
        this.path,
        errors.map((message) => ({ step: 'ls', message })),
      );
    const entries: Ext4DirEntry[] = [];
    for (const line of stdout.split('\n')) {
      const m = /^\/(\d+)\/(\d+)\/(\d+)\/(\d+)\/(.*)\/\d*\/$/.exec(line.trim());
      if (!m || m[5] === '.' || m[5] === '..') continue;
      const mode = Number.parseInt(m[2] ?? '0', 8);
      entries.push({
        name: m[5] ?? '',
        type: typeFromMode(mode),
        mode: mode & 0o7777,
        uid: Number(m[3]),
        gid: Number(m[4]),
      });
    }
    return entries;
  }

  batch(): Ext4Batch {
    return new Ext4Batch(this, this.runner);
  }

  async mkdirP(path: string, own: Ownership = {}): Promise<void> {
    const b = this.batch();
    await b.mkdirP(path, own);
    await b.commit();
  }

  async writeFile(path: string, content: string | Buffer | { hostFile: string }, own: Ownership = {}): Promise<void> {
    const b = this.batch();
    await b.writeFile(path, content, own);
    await b.commit();
  }

  async symlink(path: string, target: string): Promise<void> {
    const b = this.batch();
    await b.symlink(path, target);
    await b.commit();
  }
}

type Staged = { kind: 'content'; data: string | Buffer } | { kind: 'host'; file: string };

/**
 * Write operations queued as one debugfs command file. Existence is looked up (read-only) while queueing so
 * replacements become `rm` + `write`; `commit()` applies everything and throws on any reported error.
 */
export class Ext4Batch {
  private readonly lines: string[] = [];
  private readonly staged = new Map<string, Staged>();
  private readonly known = new Map<string, Ext4FileType | 'absent'>();

  constructor(
    private readonly image: Ext4Image,
    private readonly runner: CommandRunner,
  ) {}

  /** Labels the following commands; errors debugfs reports after this point are attributed to `name`. */
  setStep(name: string): void {
    if (!/^[a-z0-9-]+$/.test(name)) throw new GuestPathError(name, 'invalid step name');
    // debugfs has no echo: an unknown command leaves an ordered marker on stderr among the real errors.
    this.lines.push(`nqvm-step:${name}`);
  }

  get size(): number {
    return this.lines.filter((l) => !l.startsWith('nqvm-step:')).length;
  }

  private async typeOf(path: string): Promise<Ext4FileType | 'absent'> {
    const cached = this.known.get(path);
    if (cached) return cached;
    const st = await this.image.stat(path);
    const t = st ? st.type : 'absent';
    this.known.set(path, t);
    return t;
  }

  private own(path: string, fileType: number, own: Ownership, defaultMode: number): void {
    const mode = own.mode ?? defaultMode;
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new GuestPathError(path, `bad mode ${mode}`);
    this.lines.push(`sif ${path} mode 0${(fileType | mode).toString(8)}`);
    for (const [field, id] of [
      ['uid', own.uid ?? 0],
      ['gid', own.gid ?? 0],
    ] as const) {
      if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw new GuestPathError(path, `bad ${field} ${id}`);
      this.lines.push(`sif ${path} ${field} ${id}`);
    }
  }

  /** Creates missing directories (with `own` applied to each one created) and applies `own` to the leaf. */
  async mkdirP(path: string, own: Ownership = {}): Promise<void> {
    assertGuestPath(path);
    if (path === '/') return;
    const segs = path.slice(1).split('/');
    for (let i = 1; i <= segs.length; i++) {
      const p = `/${segs.slice(0, i).join('/')}`;
      const t = await this.typeOf(p);
      const leaf = i === segs.length;
      if (t === 'absent') {
        this.lines.push(`mkdir ${p}`);
        this.known.set(p, 'directory');
        this.own(p, 0o040000, leaf ? own : {}, 0o755);
      } else if (t === 'directory' || t === 'symlink') {
        if (leaf && (own.mode !== undefined || own.uid !== undefined || own.gid !== undefined)) {
          if (t === 'symlink') throw new GuestPathError(p, 'is a symlink, cannot set ownership');
          this.own(p, 0o040000, own, 0o755);
        }
      } else {
        throw new GuestPathError(p, 'exists and is not a directory');
      }
    }
  }

  private async replaceable(path: string): Promise<void> {
    const t = await this.typeOf(path);
    if (t === 'directory') throw new GuestPathError(path, 'is a directory');
    if (t !== 'absent') this.lines.push(`rm ${path}`);
    const parent = await this.typeOf(parentOf(path));
    if (parent !== 'directory' && parent !== 'symlink') throw new GuestPathError(path, 'parent directory missing');
  }

  /** Writes (or replaces) a regular file from a string/Buffer or from a host file; default mode 0644 root:root. */
  async writeFile(path: string, content: string | Buffer | { hostFile: string }, own: Ownership = {}): Promise<void> {
    assertGuestPath(path);
    await this.replaceable(path);
    const id = `f${this.staged.size}`;
    if (typeof content === 'string' || Buffer.isBuffer(content))
      this.staged.set(id, { kind: 'content', data: content });
    else this.staged.set(id, { kind: 'host', file: content.hostFile });
    this.lines.push(`write @STAGE@/${id} ${path}`);
    this.known.set(path, 'regular');
    this.own(path, 0o100000, own, 0o644);
  }

  /** Creates (or replaces) a symlink at `path` pointing to `target`. */
  async symlink(path: string, target: string): Promise<void> {
    assertGuestPath(path);
    assertLinkTarget(target);
    await this.replaceable(path);
    this.lines.push(`symlink ${path} ${target}`);
    this.known.set(path, 'symlink');
  }

  /** Removes a file or symlink if present. */
  async remove(path: string): Promise<void> {
    assertGuestPath(path);
    const t = await this.typeOf(path);
    if (t === 'directory') throw new GuestPathError(path, 'is a directory');
    if (t !== 'absent') this.lines.push(`rm ${path}`);
    this.known.set(path, 'absent');
  }

  async commit(): Promise<void> {
    if (this.size === 0) return;
    const dir = await safeTempDir();
    try {
      for (const [id, s] of this.staged) {
        const at = join(dir, id);
        // Small files into a fresh temp dir: written synchronously, so the boot path does not queue behind the
        // thread pool once per file.
        if (s.kind === 'content') writeFileSync(at, s.data);
        else {
          // A symlink with a safe name keeps arbitrary host paths out of the command file.
          const st = await hostStat(s.file);
          if (!st.isFile()) throw new GuestPathError(s.file, 'host source is not a regular file');
          await hostSymlink(s.file, at);
        }
      }
      const cmdFile = join(dir, 'commands');
      writeFileSync(cmdFile, `${this.lines.map((l) => l.replace('@STAGE@', dir)).join('\n')}\n`);
      this.image.invalidate();
      const res = await this.runner.run('debugfs', ['-w', '-f', cmdFile, '--', this.image.path]);
      const errors: { step: string; message: string }[] = [];
      let step = '';
      let markers = 0;
      for (const line of errorLines(res.stderr)) {
        const marker = /^debugfs: Command not found nqvm-step:([a-z0-9-]+)$/.exec(line);
        if (marker) {
          step = marker[1] ?? '';
          markers++;
        } else errors.push({ step, message: line });
      }
      if (res.code !== 0 && markers === 0 && errors.length === 0) errors.push({ step, message: `exited ${res.code}` });
      if (errors.length) throw new Ext4CommandError(this.image.path, errors);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    this.lines.length = 0;
    this.staged.clear();
  }
}
