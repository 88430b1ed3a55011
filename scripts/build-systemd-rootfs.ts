import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type CommandRunner, runChecked, systemRunner } from '../packages/agent/src/host/exec.ts';

/**
 * Demo rootfs images with an init other than the demo's busybox: Debian bookworm (minbase) booting systemd, sysvinit,
 * or sysvinit with OpenRC as its rc, packed into ext4 with `mke2fs -d` (no mount). They boot through the demo kernel +
 * initramfs, which switch_roots to /dev/vda and execs /sbin/init. Built while the network is reachable; tests only
 * read the cache.
 *
 * Usage: tsx scripts/build-systemd-rootfs.ts [cacheDir] [init...]   (default .cache/demo-cache systemd)
 */

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
export type DebianInit = 'systemd' | 'sysvinit' | 'openrc';
export const INITS: readonly DebianInit[] = ['systemd', 'sysvinit', 'openrc'];
/** The packages debootstrap adds to minbase, per init: minbase itself has no init at all. */
export const INCLUDE: Record<DebianInit, readonly string[]> = {
  /** systemd-sysv makes /sbin/init systemd; udev gives device units (serial getty) and links for networkd. */
  systemd: ['systemd-sysv', 'udev', 'iproute2', 'procps', 'login', 'passwd'],
  /** sysvinit-core makes /sbin/init sysvinit; ifupdown's /etc/init.d/networking applies the injected address. */
  sysvinit: ['sysvinit-core', 'ifupdown', 'iproute2', 'procps', 'login', 'passwd'],
  openrc: ['sysvinit-core', 'ifupdown', 'iproute2', 'procps', 'login', 'passwd'],
};
/**
 * Installed by apt inside the tree after debootstrap: debootstrap resolves sysvinit-core's `sysv-rc | openrc` to
 * sysv-rc, which openrc conflicts with, so OpenRC has to replace it afterwards.
 */
export const REPLACE_RC: Partial<Record<DebianInit, string>> = { openrc: 'openrc' };
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
/** sysvinit's inittab: a getty on the serial console (the microVM has no VTs, so none on tty1-6). */
const SERIAL_GETTY = 'T0:2345:respawn:/sbin/getty -L ttyS0 115200 vt100';

/** The recipe hash names the cache entry; systemd's inputs are unchanged from before sysvinit existed. */
export function debianRootfsVersion(init: DebianInit): string {
  const inputs = [BUILDER_REVISION, SUITE, MIRROR, INCLUDE[init].join(','), PRUNE.join(','), String(HEADROOM_MIB)];
  if (init !== 'systemd') inputs.push(init, SERIAL_GETTY);
  const rc = REPLACE_RC[init];
  if (rc) inputs.push(rc);
  return `${SUITE}-${createHash('sha256').update(inputs.join('\0')).digest('hex').slice(0, 12)}`;
}

export const SYSTEMD_ROOTFS_VERSION = debianRootfsVersion('systemd');

const ROOT = path.resolve(import.meta.dirname, '..');

/** Where the built image lives for this init's recipe version. */
export function debianRootfsPath(init: DebianInit, cacheDir = path.join(ROOT, '.cache', 'demo-cache')): string {
  return path.join(cacheDir, `${init}-rootfs-${debianRootfsVersion(init)}`, 'rootfs.ext4');
}

export function systemdRootfsPath(cacheDir?: string): string {
  return debianRootfsPath('systemd', cacheDir);
}

export const BUILD_HINT = `build it with: node --import tsx scripts/build-systemd-rootfs.ts .cache/demo-cache ${INITS.join(' ')} (needs debootstrap and deb.debian.org; scripts/test.sh runs it)`;

/** Turns Debian's default inittab into one for a serial-only microVM. */
export function serialInittab(text: string): string {
  const lines = text
    .split('\n')
    .filter((l) => !/^#?T0:/.test(l))
    .map((l) => (/^[1-6]:\d+:respawn:\S*getty/.test(l) ? `#${l}` : l));
  return `${lines.join('\n').trimEnd()}\n${SERIAL_GETTY}\n`;
}

/** Builds the image once per recipe version (debs cached for rebuilds); returns its path. Idempotent and atomic. */
/**
 * Build trees an interrupted run left behind (a killed build never reaches its `finally`). debootstrap may have
 * left `/proc` (or `/sys`) mounted inside one: those are unmounted first, deepest first, so removing the tree never
 * walks into a live filesystem. A failure here is reported and the build goes on in a fresh directory.
 */
export async function sweepInterruptedBuilds(runner: CommandRunner, cacheDir: string, init: DebianInit): Promise<void> {
  const prefix = `.${init}-rootfs-build-`;
  const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => !!m);
  for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const dir = path.resolve(cacheDir, name);
    try {
      const inside = mounts.filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
      for (const m of inside) await runChecked(runner, 'umount', ['--', m]);
      await rm(dir, { recursive: true, force: true });
    } catch (e) {
      console.error(`leaving ${dir} (an interrupted build): ${(e as Error).message}`);
    }
  }
}

export async function buildDebianRootfs(runner: CommandRunner, cacheDir: string, init: DebianInit): Promise<string> {
  const image = debianRootfsPath(init, cacheDir);
  if (existsSync(image)) return image;
  await sweepInterruptedBuilds(runner, cacheDir, init);
  const debs = path.join(cacheDir, 'debootstrap-debs');
  await mkdir(debs, { recursive: true });
  const work = path.join(cacheDir, `.${init}-rootfs-build-${randomBytes(4).toString('hex')}`);
  const tree = path.join(work, 'root');
  try {
    await mkdir(work, { recursive: true });
    await runChecked(
      runner,
      'debootstrap',
      ['--variant=minbase', `--include=${INCLUDE[init].join(',')}`, `--cache-dir=${debs}`, SUITE, tree, MIRROR],
      { timeoutMs: 900_000 },
    );
    const rc = REPLACE_RC[init];
    if (rc)
      await runChecked(
        runner,
        'chroot',
        [
          tree,
          '/usr/bin/env',
          'DEBIAN_FRONTEND=noninteractive',
          'apt-get',
          'install',
          '-y',
          '--no-install-recommends',
          rc,
        ],
        { timeoutMs: 600_000 },
      );
    for (const rel of PRUNE) {
      const dir = path.join(tree, rel);
      for (const e of await readdir(dir).catch(() => [] as string[])) await rm(path.join(dir, e), { recursive: true });
    }
    if (init === 'systemd') {
      // Empty: each VM's systemd makes its own machine id on first boot instead of all sharing one.
      await writeFile(path.join(tree, 'etc/machine-id'), '');
      await rm(path.join(tree, 'var/lib/dbus/machine-id'), { force: true });
    } else {
      const inittab = path.join(tree, 'etc/inittab');
      await writeFile(inittab, serialInittab(await readFile(inittab, 'utf8')));
    }
    await writeFile(path.join(tree, 'etc/hostname'), `nqvm-${init}\n`);
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
      `nqvm-${init}`,
      '-E',
      'root_owner=0:0',
      '-d',
      tree,
      '--',
      out,
      `${sizeMib}M`,
    ]);
    const version = debianRootfsVersion(init);
    await writeFile(
      path.join(work, 'manifest.json'),
      `${JSON.stringify({ version, init, suite: SUITE, include: INCLUDE[init], builtAt: new Date().toISOString() }, null, 2)}\n`,
    );
    await rm(tree, { recursive: true, force: true });
    const final = path.dirname(image);
    await rename(work, final).catch(async (e: NodeJS.ErrnoException) => {
      if (!existsSync(image)) throw e;
    });
    for (const old of await readdir(cacheDir))
      if (old.startsWith(`${init}-rootfs-`) && old !== path.basename(final))
        await rm(path.join(cacheDir, old), { recursive: true, force: true });
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function buildSystemdRootfs(runner: CommandRunner, cacheDir: string): Promise<string> {
  return buildDebianRootfs(runner, cacheDir, 'systemd');
}

export async function readDebianRootfsManifest(init: DebianInit, cacheDir?: string): Promise<unknown> {
  return JSON.parse(await readFile(path.join(path.dirname(debianRootfsPath(init, cacheDir)), 'manifest.json'), 'utf8'));
}

function isInit(s: string): s is DebianInit {
  return (INITS as readonly string[]).includes(s);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const cacheDir = path.resolve(process.argv[2] ?? path.join(ROOT, '.cache', 'demo-cache'));
  const inits = process.argv.slice(3);
  const bad = inits.filter((i) => !isInit(i));
  if (bad.length) throw new Error(`unknown init ${bad.join(', ')}; expected one of ${INITS.join(', ')}`);
  // One at a time: the builds share debootstrap's deb cache.
  for (const init of inits.length ? inits.filter(isInit) : (['systemd'] as const)) {
    const started = performance.now();
    const image = await buildDebianRootfs(systemRunner, cacheDir, init);
    process.stdout.write(
      `${JSON.stringify({ init, image, version: debianRootfsVersion(init), seconds: (performance.now() - started) / 1000 })}\n`,
    );
  }
}
