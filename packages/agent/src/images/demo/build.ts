import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type CommandRunner, runChecked } from '../../host/exec.js';
import { ETC_FILES, INITRAMFS_MODULES, initScript, RCS, ROOTFS_MODULES } from './guest-files.js';
import { indexModules, moduleLoadOrder, modulesDep } from './modules.js';

export interface BuildDemoImagesOptions {
  /** Where vmlinuz, initrd.gz, rootfs.ext4 and manifest.json end up (replaced atomically). */
  outDir: string;
  /** Downloaded .debs are kept here between builds; scratch space lives here too. */
  cacheDir: string;
  runner: CommandRunner;
  /** A statically linked busybox (Debian's busybox-static). */
  busyboxPath?: string;
  rootfsSizeMib?: number;
}

export interface DemoImages {
  kernel: string;
  initrd: string;
  rootfs: string;
  /** `<kernel release>-<recipe hash>`; changes whenever the kernel package or the guest recipe does. */
  version: string;
  kernelRelease: string;
}

interface Manifest {
  version: string;
  kernelRelease: string;
  kernelPackage: string;
  builtAt: string;
}

// Bump when the build steps change in a way the recipe texts do not show.
const BUILDER_REVISION = '1';
const META_PACKAGE = 'linux-image-cloud-amd64';
const KERNEL_PACKAGE_RE = /^linux-image-[0-9][a-z0-9.+-]*-cloud-amd64$/;
const DEB_VERSION_RE = /^[0-9][A-Za-z0-9.+~:-]*$/;

/** Builds (or finds already built) the demo kernel, initramfs and busybox rootfs. Idempotent and atomic. */
export async function buildDemoImages(opts: BuildDemoImagesOptions): Promise<DemoImages> {
  const { outDir, cacheDir, runner } = opts;
  const busybox = opts.busyboxPath ?? '/bin/busybox';
  const debsDir = path.join(cacheDir, 'debs');
  await mkdir(debsDir, { recursive: true });

  const metaDeb = await cachedDeb(runner, debsDir, META_PACKAGE);
  const { name: kernelPkg, version: kernelPkgVersion } = parseKernelDependency(
    await runChecked(runner, 'dpkg-deb', ['-f', metaDeb, 'Depends']),
  );
  const kernelDeb = await cachedDeb(runner, debsDir, kernelPkg, kernelPkgVersion);
  const recipeHash = createHash('sha256')
    .update(
      [BUILDER_REVISION, path.basename(kernelDeb), RCS, initScript(INITRAMFS_MODULES), JSON.stringify(ETC_FILES)].join(
        '\0',
      ),
    )
    .update(ROOTFS_MODULES.join(','))
    .digest('hex')
    .slice(0, 12);

  const existing = await readManifest(outDir);
  if (existing?.version.endsWith(`-${recipeHash}`)) return result(outDir, existing);

  const work = await mkdtemp(path.join(cacheDir, 'build-'));
  const staging = `${outDir}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await mkdir(staging, { recursive: true });
    const kernelTree = path.join(work, 'kernel');
    await runChecked(runner, 'dpkg-deb', ['-x', kernelDeb, kernelTree]);
    const vmlinuz = (await readdir(path.join(kernelTree, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${kernelDeb} has no boot/vmlinuz-*`);
    const kernelRelease = vmlinuz.slice('vmlinuz-'.length);
    const modulesDir = path.join(kernelTree, 'lib', 'modules', kernelRelease);
    const index = await indexModules(modulesDir);
    const applets = (await runChecked(runner, busybox, ['--list-full'])).split('\n').filter((l) => l.trim());

    await copyFile(path.join(kernelTree, 'boot', vmlinuz), path.join(staging, 'vmlinuz'));

    const initramfs = path.join(work, 'initramfs');
    const initrdOrder = moduleLoadOrder(INITRAMFS_MODULES, index);
    const moduleFiles: string[] = [];
    await mkdir(path.join(initramfs, 'lib', 'modules'), { recursive: true });
    for (const name of initrdOrder) {
      const mod = index.get(name);
      if (!mod) continue;
      const base = path.basename(mod.relPath);
      await copyFile(path.join(modulesDir, mod.relPath), path.join(initramfs, 'lib', 'modules', base));
      moduleFiles.push(base);
    }
    await installBusybox(initramfs, busybox, applets);
    for (const d of ['proc', 'sys', 'dev', 'mnt']) await mkdir(path.join(initramfs, d), { recursive: true });
    await writeFile(path.join(initramfs, 'init'), initScript(moduleFiles), { mode: 0o755 });
    const cpioList = (await listTree(initramfs)).join('\n');
    await runChecked(runner, 'cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '-F', path.join(work, 'initrd')], {
      cwd: initramfs,
      input: `${cpioList}\n`,
    });
    await runChecked(runner, 'gzip', ['-1', '-n', '-f', path.join(work, 'initrd')]);
    await rename(path.join(work, 'initrd.gz'), path.join(staging, 'initrd.gz'));

    const rootfs = path.join(work, 'rootfs');
    for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'root', 'mnt', 'var/log', 'etc/init.d', 'home']) {
      await mkdir(path.join(rootfs, d), { recursive: true });
    }
    await chmod(path.join(rootfs, 'tmp'), 0o1777);
    await chmod(path.join(rootfs, 'root'), 0o700);
    await installBusybox(rootfs, busybox, applets);
    for (const [rel, file] of Object.entries(ETC_FILES)) {
      await writeFile(path.join(rootfs, rel), file.text, { mode: file.mode });
      await chmod(path.join(rootfs, rel), file.mode);
    }
    const rootfsModules = moduleLoadOrder(ROOTFS_MODULES, index);
    const guestModulesDir = path.join(rootfs, 'lib', 'modules', kernelRelease);
    for (const name of rootfsModules) {
      const mod = index.get(name);
      if (!mod) continue;
      await mkdir(path.dirname(path.join(guestModulesDir, mod.relPath)), { recursive: true });
      await copyFile(path.join(modulesDir, mod.relPath), path.join(guestModulesDir, mod.relPath));
    }
    await writeFile(path.join(guestModulesDir, 'modules.dep'), modulesDep(rootfsModules, index));
    await copyFile(path.join(modulesDir, 'modules.builtin'), path.join(guestModulesDir, 'modules.builtin'));
    const sizeMib = opts.rootfsSizeMib ?? 64;
    const image = path.join(staging, 'rootfs.ext4');
    await runChecked(runner, 'mkfs.ext4', [
      '-q',
      '-F',
      '-L',
      'nqvm-root',
      '-E',
      'root_owner=0:0',
      '-d',
      rootfs,
      image,
      `${sizeMib}M`,
    ]);

    const manifest: Manifest = {
      version: `${kernelRelease}-${recipeHash}`,
      kernelRelease,
      kernelPackage: `${kernelPkg}=${kernelPkgVersion}`,
      builtAt: new Date().toISOString(),
    };
    await writeFile(path.join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await publish(staging, outDir, manifest.version);
    return result(outDir, (await readManifest(outDir)) ?? manifest);
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(staging, { recursive: true, force: true });
  }
}

/** Parses `dpkg-deb -f <meta> Depends`, e.g. `linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)`. */
export function parseKernelDependency(depends: string): { name: string; version: string } {
  const m = /(linux-image-\S+)\s*\(=\s*([^)\s]+)\)/.exec(depends);
  if (!m?.[1] || !m[2] || !KERNEL_PACKAGE_RE.test(m[1]) || !DEB_VERSION_RE.test(m[2])) {
    throw new Error(`unexpected Depends of ${META_PACKAGE}: ${depends.trim()}`);
  }
  return { name: m[1], version: m[2] };
}

/** The cached .deb of a package, downloaded with apt-get into a scratch dir and moved in when absent. */
async function cachedDeb(runner: CommandRunner, debsDir: string, name: string, version?: string): Promise<string> {
  const fileVersion = version?.replace(/:/g, '%3a');
  const prefix = fileVersion ? `${name}_${fileVersion}_` : `${name}_`;
  const hit = (await readdir(debsDir)).filter((f) => f.startsWith(prefix) && f.endsWith('.deb')).sort();
  const last = hit.at(-1);
  if (last) return path.join(debsDir, last);
  const scratch = await mkdtemp(path.join(debsDir, '.download-'));
  try {
    await runChecked(runner, 'apt-get', ['download', version ? `${name}=${version}` : name], { cwd: scratch });
    const got = (await readdir(scratch)).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
    if (!got) throw new Error(`apt-get download ${name} produced no .deb`);
    await rename(path.join(scratch, got), path.join(debsDir, got));
    return path.join(debsDir, got);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function installBusybox(root: string, busybox: string, applets: readonly string[]): Promise<void> {
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await copyFile(busybox, path.join(root, 'bin', 'busybox'));
  await chmod(path.join(root, 'bin', 'busybox'), 0o755);
  for (const applet of applets) {
    const rel = applet.replace(/^\/+/, '');
    if (rel === 'bin/busybox' || rel.includes('..')) continue;
    await mkdir(path.join(root, path.dirname(rel)), { recursive: true });
    await symlink('/bin/busybox', path.join(root, rel)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
  }
}

/** Every path under `root`, relative, parents before children, as cpio wants its list. */
async function listTree(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true });
  return ['.', ...entries.map((e) => `./${e}`).sort()];
}

async function readManifest(outDir: string): Promise<Manifest | null> {
  try {
    const m = JSON.parse(await readFile(path.join(outDir, 'manifest.json'), 'utf8')) as Manifest;
    return typeof m.version === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** Moves the staging dir into place; a concurrent builder that got there first with the same version wins. */
async function publish(staging: string, outDir: string, version: string): Promise<void> {
  await mkdir(path.dirname(outDir), { recursive: true });
  try {
    await rename(staging, outDir);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
  }
  if ((await readManifest(outDir))?.version === version) return;
  const old = `${outDir}.old-${randomBytes(4).toString('hex')}`;
  await rename(outDir, old);
  await rename(staging, outDir);
  await rm(old, { recursive: true, force: true });
}

function result(outDir: string, m: Manifest): DemoImages {
  return {
    kernel: path.join(outDir, 'vmlinuz'),
    initrd: path.join(outDir, 'initrd.gz'),
    rootfs: path.join(outDir, 'rootfs.ext4'),
    version: m.version,
    kernelRelease: m.kernelRelease,
  };
}
