import { access, chmod, chown, constants, open, stat } from 'node:fs/promises';
import { dirname, relative, sep } from 'node:path';

/** The unprivileged user and group a VMM runs as: one of its own per VM. */
export interface VmmUser {
  uid: number;
  gid: number;
}

export function assertVmmUser(user: VmmUser): VmmUser {
  for (const id of [user.uid, user.gid])
    if (!Number.isInteger(id) || id < 1 || id > 0xffff_fffe) throw new RangeError(`not an unprivileged id: ${id}`);
  return user;
}

/** Character device numbers of a device node, for a devices cgroup. */
export async function deviceNumbers(node: string): Promise<[number, number]> {
  const { rdev } = await stat(node);
  return [(rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)];
}

/**
 * The device nodes an unprivileged VMM opens must be readable and writable by everyone, as Debian's udev rules make
 * /dev/kvm, /dev/net/tun and /dev/vhost-* (a machine without udev leaves them root-only). What a VMM may do with them
 * is the kernel's to check: the TAPs it may attach are the ones it owns, and its cgroup allows only these nodes.
 */
export async function openDeviceNodes(nodes: readonly string[]): Promise<void> {
  for (const node of nodes) {
    const { mode } = await stat(node);
    if ((mode & 0o006) !== 0o006) await chmod(node, (mode & 0o7777) | 0o666);
  }
}

/** Creates `path` if missing and gives it to `user`, readable and writable by it alone. */
export async function giveFile(path: string, user: VmmUser, opts: { truncate?: boolean } = {}): Promise<void> {
  const fh = await open(path, opts.truncate ? 'w' : 'a', 0o600);
  try {
    await fh.chown(user.uid, user.gid);
    await fh.chmod(0o600);
  } finally {
    await fh.close();
  }
}

/**
 * The VM directory as the VMM sees it: owned by root with the VM's group, which may only pass through (0710). The
 * VMM cannot list it, create, rename or replace anything in it, so the root agent never meets a link it planted;
 * it reaches the files given to it by name.
 */
export async function closeVmDir(dir: string, user: VmmUser): Promise<void> {
  await chown(dir, 0, user.gid);
  await chmod(dir, 0o710);
}

/** Whether `path` is inside `dir`. */
export function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep);
}

/**
 * Files a VMM only reads from outside its directory (kernel, initrd, the shared guest tools image) must be readable
 * by anyone and their directories passable; otherwise the launch fails here, saying which, instead of in QEMU.
 */
export async function assertReadableByAnyone(path: string): Promise<void> {
  const { mode } = await stat(path);
  if ((mode & 0o004) === 0) throw new Error(`${path} is not readable by the VMM's user (mode ${mode.toString(8)})`);
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const d = await stat(dir);
    if ((d.mode & 0o001) === 0) throw new Error(`${dir} cannot be passed through by the VMM's user`);
    if (dir === dirname(dir)) break;
  }
  await access(path, constants.R_OK);
}
