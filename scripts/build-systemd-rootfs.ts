import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type CommandRunner, runChecked, systemRunner } from '../packages/agent/src/host/exec.ts';

/**
 * A second demo rootfs with a different init: Debian bookworm (minbase) booting systemd, packed into ext4 with
 * `mke2fs -d` (no mount). It boots through the demo kernel + initramfs, which switch_roots to /dev/vda and execs
 * /sbin/init (systemd, via systemd-sysv). Built while the network is reachable; tests only read the cache.
 *
 * Usage: tsx scripts/build-systemd-rootfs.ts [cacheDir]   (default .cache/demo-cache)
 */

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
/** systemd-sysv makes /sbin/init systemd; udev gives device units (serial getty) and links for networkd. */
export const INCLUDE = ['systemd-sysv', 'udev', 'iproute2', 'procps', 'login', 'passwd'] as const;
/** Trimmed after debootstrap: nothing in a guest reads them. */
const PRUNE = [
  'usr/share/doc',
  'usr/share/man',
  'usr/share/info',
  'usr/share/locale',
  'var/cache/apt',
  'var/lib/apt/lists',
];
/** Free space left in the image past its content: every VM boots a copy, and images travel over HTTP. */
const HEADROOM_MIB = 96;
// Bump when the steps below change in a way the constants above do not show.
const BUILDER_REVISION = '2';

export const SYSTEMD_ROOTFS_VERSION = `${SUITE}-${createHash('sha256')
  .update([BUILDER_REVISION, SUITE, MIRROR, INCLUDE.join(','), PRUNE.join(','), String(HEADROOM_MIB)].join('\0'))
  .digest('hex')
  .slice(0, 12)}`;

const ROOT = path.resolve(import.meta.dirname, '..');

/** Where the built image lives for this recipe version. */
export function systemdRootfsPath(cacheDir = path.join(ROOT, '.cache', 'demo-cache')): string {
  return path.join(cacheDir, `systemd-rootfs-${SYSTEMD_ROOTFS_VERSION}`, 'rootfs.ext4');
}

export const BUILD_HINT =
  'build it with: node --import tsx scripts/build-systemd-rootfs.ts .cache/demo-cache (needs debootstrap and deb.debian.org; scripts/test.sh runs it)';

/** Builds the image once per recipe version (debs cached for rebuilds); returns its path. Idempotent and atomic. */
export async function buildSystemdRootfs(runner: CommandRunner, cacheDir: string): Promise<string> {
  const image = systemdRootfsPath(cacheDir);
  if (existsSync(image)) return image;
  const debs = path.join(cacheDir, 'debootstrap-debs');
  await mkdir(debs, { recursive: true });
  const work = path.join(cacheDir, `.systemd-rootfs-build-${randomBytes(4).toString('hex')}`);
  const tree = path.join(work, 'root');
  try {
    await mkdir(work, { recursive: true });
    await runChecked(
      runner,
      'debootstrap',
      ['--variant=minbase', `--include=${INCLUDE.join(',')}`, `--cache-dir=${debs}`, SUITE, tree, MIRROR],
      { timeoutMs: 900_000 },
    );
    for (const rel of PRUNE) {
      const dir = path.join(tree, rel);
      for (const e of await readdir(dir).catch(() => [] as string[])) await rm(path.join(dir, e), { recursive: true });
    }
    // Empty: each VM's systemd makes its own machine id on first boot instead of all sharing one.
    await writeFile(path.join(tree, 'etc/machine-id'), '');
    await rm(path.join(tree, 'var/lib/dbus/machine-id'), { force: true });
    await writeFile(path.join(tree, 'etc/hostname'), 'nqvm-systemd\n');
    await writeFile(path.join(tree, 'etc/fstab'), '# root is mounted by the nqvm initramfs\n');
    const out = path.join(work, 'rootfs.ext4');
    const usedMib = Number((await runChecked(runner, 'du', ['-sm', '-x', '--', tree])).split('\t')[0]);
    const sizeMib = Math.ceil((usedMib * 1.15 + HEADROOM_MIB) / 16) * 16;
    await runChecked(runner, 'mke2fs', [
      '-q',
      '-F',
      '-t',
      'ext4',
      '-L',
      'nqvm-systemd',
      '-E',
      'root_owner=0:0',
      '-d',
      tree,
      '--',
      out,
      `${sizeMib}M`,
    ]);
    await writeFile(
      path.join(work, 'manifest.json'),
      `${JSON.stringify({ version: SYSTEMD_ROOTFS_VERSION, suite: SUITE, include: INCLUDE, builtAt: new Date().toISOString() }, null, 2)}\n`,
    );
    await rm(tree, { recursive: true, force: true });
    const final = path.dirname(image);
    await rename(work, final).catch(async (e: NodeJS.ErrnoException) => {
      if (!existsSync(image)) throw e;
    });
    for (const old of await readdir(cacheDir))
      if (old.startsWith('systemd-rootfs-') && old !== path.basename(final))
        await rm(path.join(cacheDir, old), { recursive: true, force: true });
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export async function readSystemdRootfsManifest(cacheDir?: string): Promise<unknown> {
  return JSON.parse(await readFile(path.join(path.dirname(systemdRootfsPath(cacheDir)), 'manifest.json'), 'utf8'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cacheDir = path.resolve(process.argv[2] ?? path.join(ROOT, '.cache', 'demo-cache'));
  const started = performance.now();
  const image = await buildSystemdRootfs(systemRunner, cacheDir);
  process.stdout.write(
    `${JSON.stringify({ image, version: SYSTEMD_ROOTFS_VERSION, seconds: (performance.now() - started) / 1000 })}\n`,
  );
}
