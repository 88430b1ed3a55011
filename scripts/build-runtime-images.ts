import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type CommandRunner, runChecked, systemRunner } from '../packages/agent/src/host/exec.ts';
import {
  type FunctionRuntime,
  RUNTIME_IMAGE_LABEL,
  runtimeImageName,
} from '../packages/api/src/function-runner.schema.ts';

/**
 * The function runtimes' rootfs images, made from the demo busybox rootfs (which boots through the demo kernel +
 * initramfs and runs the guest agent from the guest tools drive):
 * - `node20`: the demo rootfs as it is: the handler runs on the guest tools' Node.js 20, the agent's own node;
 * - `python3`: the demo rootfs plus Debian bookworm's python3.11 interpreter and standard library, unpacked from
 *   their .debs with glibc (no dpkg, no apt, no init of Debian's: a few MB over the busybox image).
 * Built once per recipe version (the .debs are cached), atomically; tests only read the result.
 *
 * Usage: tsx scripts/build-runtime-images.ts [demoImagesDir] [cacheDir] [outDir]
 *   (default .cache/demo-images .cache/runtime-cache .cache/runtime-images)
 */

const ROOT = path.resolve(import.meta.dirname, '..');
// Bump when the steps below change in a way the constants do not show.
const BUILDER_REVISION = '1';
/** Unpacked into the python3 image, in this order; modules needing libraries not listed (ssl, sqlite) fail to import. */
export const PYTHON_DEBS = [
  'libc6',
  'zlib1g',
  'libexpat1',
  'libffi8',
  'libpython3.11-minimal',
  'python3.11-minimal',
  'libpython3.11-stdlib',
] as const;
/** Nothing in a runtime VM reads them. */
const PRUNE = ['usr/share/doc', 'usr/share/man', 'usr/share/lintian', 'usr/share/locale', 'usr/lib/python3.11/test'];
const HEADROOM_MIB = 32;

export const RUNTIMES: readonly FunctionRuntime[] = ['node20', 'python3'];

export interface RuntimeImage {
  runtime: FunctionRuntime;
  /** The image name to register it under (`runtime-<runtime>`) and its label. */
  name: string;
  labels: Record<string, string>;
  rootfs: string;
  version: string;
}

export function runtimeImagePath(
  runtime: FunctionRuntime,
  outDir = path.join(ROOT, '.cache', 'runtime-images'),
): string {
  return path.join(outDir, runtime, 'rootfs.ext4');
}

export const RUNTIME_BUILD_HINT =
  'build them with: node --import tsx scripts/build-runtime-images.ts (needs the demo images and deb.debian.org once; scripts/test.sh runs it)';

async function demoVersion(demoDir: string): Promise<string> {
  return (JSON.parse(await readFile(path.join(demoDir, 'manifest.json'), 'utf8')) as { version: string }).version;
}

/** A cached .deb of `name` (the host's apt candidate, downloaded once with `apt-get download`). */
async function cachedDeb(runner: CommandRunner, dir: string, name: string): Promise<string> {
  const hit = (await readdir(dir)).filter((f) => f.startsWith(`${name}_`) && f.endsWith('.deb')).sort();
  const last = hit.at(-1);
  if (last) return path.join(dir, last);
  const scratch = await mkdtemp(path.join(dir, '.download-'));
  try {
    await runChecked(runner, 'apt-get', ['download', name], { cwd: scratch, timeoutMs: 300_000 });
    const got = (await readdir(scratch)).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
    if (!got) throw new Error(`apt-get download ${name} left no .deb`);
    await rename(path.join(scratch, got), path.join(dir, got));
    return path.join(dir, got);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function readVersion(dir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** Puts `work` (rootfs.ext4 + manifest.json) in place of `final`, atomically enough for readers of the manifest. */
async function publish(work: string, final: string): Promise<void> {
  const old = `${final}.old-${randomBytes(4).toString('hex')}`;
  if (existsSync(final)) await rename(final, old);
  await rename(work, final);
  await rm(old, { recursive: true, force: true });
}

async function buildOne(
  runner: CommandRunner,
  runtime: FunctionRuntime,
  demoDir: string,
  cacheDir: string,
  outDir: string,
): Promise<RuntimeImage> {
  const demo = await demoVersion(demoDir);
  const debsDir = path.join(cacheDir, 'debs');
  await mkdir(debsDir, { recursive: true });
  const debs = runtime === 'python3' ? await Promise.all(PYTHON_DEBS.map((d) => cachedDeb(runner, debsDir, d))) : [];
  const version = `${runtime}-${createHash('sha256')
    .update(
      [BUILDER_REVISION, demo, ...debs.map((d) => path.basename(d)), PRUNE.join(','), String(HEADROOM_MIB)].join('\0'),
    )
    .digest('hex')
    .slice(0, 12)}`;
  const final = path.join(outDir, runtime);
  const image: RuntimeImage = {
    runtime,
    name: runtimeImageName(runtime),
    labels: { [RUNTIME_IMAGE_LABEL]: runtime },
    rootfs: path.join(final, 'rootfs.ext4'),
    version,
  };
  if ((await readVersion(final)) === version) return image;
  await mkdir(outDir, { recursive: true });
  const work = await mkdtemp(path.join(outDir, `.${runtime}-build-`));
  try {
    const out = path.join(work, 'rootfs.ext4');
    if (runtime === 'node20') await copyFile(path.join(demoDir, 'rootfs.ext4'), out);
    else {
      const tree = path.join(work, 'root');
      await mkdir(tree);
      // The demo rootfs's tree, owners and modes kept (debugfs reads the image without mounting it).
      await runChecked(runner, 'debugfs', ['-R', `rdump / ${tree}`, path.join(demoDir, 'rootfs.ext4')]);
      for (const deb of debs) await runChecked(runner, 'dpkg-deb', ['-x', deb, tree]);
      await symlink('python3.11', path.join(tree, 'usr/bin/python3')).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      for (const rel of PRUNE) await rm(path.join(tree, rel), { recursive: true, force: true });
      const usedMib = Number((await runChecked(runner, 'du', ['-sm', '-x', '--', tree])).split('\t')[0]);
      const sizeMib = Math.ceil((usedMib * 1.15 + HEADROOM_MIB) / 16) * 16;
      await runChecked(runner, 'mke2fs', [
        '-q',
        '-F',
        '-t',
        'ext4',
        '-L',
        'nqvm-root',
        '-E',
        'root_owner=0:0',
        '-d',
        tree,
        '--',
        out,
        `${sizeMib}M`,
      ]);
      await rm(tree, { recursive: true, force: true });
    }
    const manifest = {
      version,
      runtime,
      name: image.name,
      labels: image.labels,
      demo,
      debs: debs.map((d) => path.basename(d)),
      builtAt: new Date().toISOString(),
    };
    await writeFile(path.join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await publish(work, final);
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Builds (or finds built) every runtime's rootfs image. Idempotent. */
export async function buildRuntimeImages(
  runner: CommandRunner = systemRunner,
  demoDir = path.join(ROOT, '.cache', 'demo-images'),
  cacheDir = path.join(ROOT, '.cache', 'runtime-cache'),
  outDir = path.join(ROOT, '.cache', 'runtime-images'),
): Promise<RuntimeImage[]> {
  const out: RuntimeImage[] = [];
  for (const r of RUNTIMES) out.push(await buildOne(runner, r, demoDir, cacheDir, outDir));
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [demoDir, cacheDir, outDir] = process.argv.slice(2).map((p) => path.resolve(p));
  const started = performance.now();
  const images = await buildRuntimeImages(systemRunner, demoDir, cacheDir, outDir);
  for (const i of images) process.stdout.write(`${JSON.stringify(i)}\n`);
  process.stderr.write(`runtime images ready in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
}
