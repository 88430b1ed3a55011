import { constants } from 'node:fs';
import { access, chown, link, mkdir, open, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { detectCgroups } from '../cgroups.js';
import type { VmmUser } from '../confine.js';
import type { VmLaunchSpec } from '../types.js';
import { type JailerOptions, jailRoot } from './jailer.js';

/** What Firecracker itself may use above guest RAM, as for QEMU. */
const VMM_OVERHEAD_MIB = 256;
const PERIOD_US = 100_000;

/** The jailer given in the options, else a `jailer` beside the firecracker binary or on PATH; null when none exists. */
export async function findJailer(firecracker: string, given: string | undefined, pathEnv = ''): Promise<string | null> {
  const dirs = [path.dirname(firecracker), ...pathEnv.split(':').filter((d) => d.startsWith('/'))];
  for (const candidate of given ? [given] : dirs.map((d) => path.join(d, 'jailer'))) {
    const ok = await access(candidate, constants.X_OK).then(
      () => stat(candidate).then((s) => s.isFile()),
      () => false,
    );
    if (ok) return candidate;
  }
  return null;
}

export interface Jail {
  options: JailerOptions;
  /** The chroot on the host. */
  root: string;
  /** The launch spec with every path as Firecracker sees it inside the chroot. */
  spec: VmLaunchSpec;
  files: { apiLog: string; metrics: string; vsock: string };
}

/** The CPU quota and memory limit of the VM as jailer `--cgroup` settings for the hierarchy in use. */
async function cgroupSettings(spec: VmLaunchSpec): Promise<Pick<JailerOptions, 'cgroupVersion' | 'cgroups'>> {
  const layout = await detectCgroups();
  if (!layout) return {};
  const quota = Math.round(spec.vcpu * PERIOD_US);
  const memory = (spec.mem_mib + VMM_OVERHEAD_MIB) * 1024 * 1024;
  return layout.version === 2
    ? { cgroupVersion: 2, cgroups: [`cpu.max=${quota} ${PERIOD_US}`, `memory.max=${memory}`] }
    : {
        cgroupVersion: 1,
        cgroups: [`cpu.cfs_period_us=${PERIOD_US}`, `cpu.cfs_quota_us=${quota}`, `memory.limit_in_bytes=${memory}`],
      };
}

async function place(source: string, target: string, owner: VmmUser | null): Promise<void> {
  await rm(target, { force: true });
  await link(source, target);
  if (owner) await chown(target, owner.uid, owner.gid);
}

async function giveNew(file: string, owner: VmmUser): Promise<void> {
  const fh = await open(file, 'a', 0o600);
  try {
    await fh.chown(owner.uid, owner.gid);
  } finally {
    await fh.close();
  }
}

/**
 * The chroot the jailer will run Firecracker in, filled before it starts: kernel, initrd and drives hard-linked in
 * (writable drives given to the VM's user; shared read-only images stay root's), its log, metrics and run directory
 * owned by that user. Firecracker runs as the user, in a new PID namespace, inside a cgroup with the VM's limits.
 */
export async function prepareJail(
  spec: VmLaunchSpec,
  firecracker: string,
  jailer: string,
  user: VmmUser,
  base: Pick<JailerOptions, 'chrootBaseDir' | 'netns'> = {},
): Promise<Jail> {
  const options: JailerOptions = {
    ...base,
    binary: jailer,
    uid: user.uid,
    gid: user.gid,
    newPidNs: true,
    parentCgroup: 'nqvm',
    ...(await cgroupSettings(spec)),
  };
  const root = jailRoot(options, spec.vm_id, firecracker);
  await rm(path.dirname(root), { recursive: true, force: true });
  await mkdir(path.join(root, 'run'), { recursive: true, mode: 0o700 });
  await chown(path.join(root, 'run'), user.uid, user.gid);
  await place(spec.kernel_path, path.join(root, 'vmlinux'), null);
  if (spec.initrd_path) await place(spec.initrd_path, path.join(root, 'initrd'), null);
  const drives = [];
  for (const d of spec.drives) {
    const name = `drive-${d.drive_id}`;
    await place(d.path, path.join(root, name), d.is_read_only ? null : user);
    drives.push({ ...d, path: `/${name}` });
  }
  const files = { apiLog: '/firecracker.log', metrics: '/firecracker.metrics', vsock: '/vsock.sock' };
  for (const f of [files.apiLog, files.metrics]) await giveNew(path.join(root, f), user);
  return {
    options,
    root,
    spec: {
      ...spec,
      kernel_path: '/vmlinux',
      ...(spec.initrd_path ? { initrd_path: '/initrd' } : {}),
      drives,
    },
    files,
  };
}
