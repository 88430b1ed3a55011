import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, mkdtemp, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { type CommandRunner, runChecked } from '../host/exec.ts';
import { AGENT_JS, LOADER, RUNTIME_DIR, TOOLS_LABEL } from './guest-config.ts';

/** A host-built folder holding `node`, the shared libraries it links and the loader, runnable on any userland. */
export interface NodeRuntime {
  dir: string;
  /** File names inside `dir`; `node` and {@link LOADER} among them. */
  files: string[];
}

export class RuntimeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeError';
  }
}

export interface LddEntry {
  name: string;
  path: string;
}

/** Parses glibc `ldd` output into the files to copy (vdso has no file and is skipped). */
export function parseLdd(output: string): LddEntry[] {
  const out: LddEntry[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const arrow = /^(\S+)\s+=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(line);
    if (arrow) {
      out.push({ name: arrow[1] ?? '', path: arrow[2] ?? '' });
      continue;
    }
    if (/=>\s+not found/.test(line)) throw new RuntimeError(`node links a missing library: ${line}`);
    const loader = /^(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(line);
    if (loader) out.push({ name: basename(loader[1] ?? ''), path: loader[1] ?? '' });
  }
  if (!out.some((e) => e.name === LOADER)) throw new RuntimeError(`ldd output names no ${LOADER}`);
  return out;
}

export interface RuntimeOptions {
  /** Per-host cache folder (e.g. under the agent data dir). */
  cacheDir: string;
  /** Node binary to ship; default the one running the agent. */
  nodePath?: string;
}

/**
 * Builds the runtime folder once per host and node binary (keyed by path, size and mtime) and reuses it;
 * a manifest written last marks a complete build.
 */
export async function buildNodeRuntime(runner: CommandRunner, opts: RuntimeOptions): Promise<NodeRuntime> {
  const nodePath = await realpath(opts.nodePath ?? process.execPath);
  const st = await stat(nodePath);
  const key = createHash('sha256').update(`${nodePath}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  const dir = join(opts.cacheDir, `node-runtime-${key}`);
  const manifest = join(dir, 'manifest.json');
  try {
    const files = JSON.parse(await readFile(manifest, 'utf8')) as unknown;
    if (Array.isArray(files) && files.every((f) => typeof f === 'string')) return { dir, files };
  } catch {
    // No complete build yet: build below.
  }
  await mkdir(opts.cacheDir, { recursive: true });
  const tmp = await mkdtemp(join(opts.cacheDir, '.node-runtime-'));
  try {
    const libs = parseLdd(await runChecked(runner, 'ldd', ['--', nodePath]));
    const files = ['node'];
    await copyFile(nodePath, join(tmp, 'node'));
    for (const lib of libs) {
      await copyFile(await realpath(lib.path), join(tmp, lib.name));
      files.push(lib.name);
    }
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(files));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
    return { dir, files };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch {
    await copyFile(src, dst);
  }
}

export interface GuestToolsOptions {
  guestAgentJs: string;
  runtime: NodeRuntime;
}

/**
 * One read-only ext4 (label `nqvm-tools`) holding `guest-agent.js` and `node/` — the layout of /opt/nqvm in a
 * guest — attached to every VM instead of copying ~100 MB of runtime into each rootfs.
 */
export async function buildGuestToolsImage(
  runner: CommandRunner,
  outPath: string,
  opts: GuestToolsOptions,
): Promise<void> {
  const stage = await mkdtemp(join(dirname(outPath), '.nqvm-tools-'));
  const tmpImage = `${stage}.img`;
  try {
    const nodeDir = join(stage, RUNTIME_DIR.slice(RUNTIME_DIR.lastIndexOf('/') + 1));
    await mkdir(nodeDir, { mode: 0o755 });
    let bytes = 0;
    for (const f of opts.runtime.files) {
      await linkOrCopy(join(opts.runtime.dir, f), join(nodeDir, f));
      bytes += (await stat(join(nodeDir, f))).size;
    }
    const js = join(stage, basename(AGENT_JS));
    await copyFile(opts.guestAgentJs, js);
    bytes += (await stat(js)).size;
    const sizeMiB = Math.ceil((bytes * 1.1) / 1048576) + 16;
    await runChecked(runner, 'mkfs.ext4', [
      '-q',
      '-F',
      '-L',
      TOOLS_LABEL,
      '-O',
      '^has_journal',
      '-m',
      '0',
      '-d',
      stage,
      '--',
      tmpImage,
      `${sizeMiB}M`,
    ]);
    // The read-only feature makes a rw mount fail, so no guest can alter the shared image.
    await runChecked(runner, 'tune2fs', ['-O', 'read-only', '--', tmpImage]);
    await rename(tmpImage, outPath);
  } finally {
    await rm(stage, { recursive: true, force: true });
    await rm(tmpImage, { force: true });
  }
}
