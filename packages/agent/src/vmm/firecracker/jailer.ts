import path from 'node:path';
import { assertAbsPath, assertJailerId, assertUint, InvalidFirecrackerValue } from './validate.js';

export interface JailerOptions {
  /** Absolute path of the jailer binary. */
  binary: string;
  uid: number;
  gid: number;
  /** Defaults to /srv/jailer, as in the jailer itself. */
  chrootBaseDir?: string;
  /** A network namespace path, e.g. /var/run/netns/nqvm-vm1. */
  netns?: string;
  daemonize?: boolean;
  newPidNs?: boolean;
  /** `--cgroup-version`: the hierarchy the jailer puts its cgroup in. */
  cgroupVersion?: 1 | 2;
  /** `--parent-cgroup`: the cgroup under which the jail's own is made. */
  parentCgroup?: string;
  /** `--cgroup file=value` settings, e.g. `cpu.cfs_quota_us=100000`. */
  cgroups?: readonly string[];
}

const CGROUP_SETTING = /^[a-z_]+\.[a-z_.]+=[0-9a-z ]{1,40}$/;
const CGROUP_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const JAILER_DEFAULT_BASE = '/srv/jailer';

/** `jailer --id … --exec-file … --uid … --gid … [--chroot-base-dir] [--netns] [--daemonize] [--new-pid-ns] -- <fc args>`. */
export function buildJailerArgv(
  opts: JailerOptions,
  id: string,
  execFile: string,
  firecrackerArgs: readonly string[],
): string[] {
  const argv = [
    '--id',
    assertJailerId(id),
    '--exec-file',
    assertAbsPath('exec-file', execFile),
    '--uid',
    String(assertUint('uid', opts.uid, 0, 0xffff_fffe)),
    '--gid',
    String(assertUint('gid', opts.gid, 0, 0xffff_fffe)),
    '--chroot-base-dir',
    assertAbsPath('chroot-base-dir', opts.chrootBaseDir ?? JAILER_DEFAULT_BASE),
  ];
  if (opts.netns) argv.push('--netns', assertAbsPath('netns', opts.netns));
  if (opts.daemonize) argv.push('--daemonize');
  if (opts.newPidNs) argv.push('--new-pid-ns');
  if (opts.cgroupVersion !== undefined)
    argv.push('--cgroup-version', String(assertUint('cgroup-version', opts.cgroupVersion, 1, 2)));
  if (opts.parentCgroup !== undefined) {
    if (!CGROUP_NAME.test(opts.parentCgroup))
      throw new InvalidFirecrackerValue('parent-cgroup', opts.parentCgroup, `must match ${CGROUP_NAME.source}`);
    argv.push('--parent-cgroup', opts.parentCgroup);
  }
  for (const c of opts.cgroups ?? []) {
    if (!CGROUP_SETTING.test(c)) throw new InvalidFirecrackerValue('cgroup', c, `must match ${CGROUP_SETTING.source}`);
    argv.push('--cgroup', c);
  }
  return [...argv, '--', ...firecrackerArgs];
}

/** The jail's root: `<base>/<exec name>/<id>/root`; the API socket lands at `<root>/run/firecracker.socket`. */
export function jailRoot(opts: JailerOptions, id: string, execFile: string): string {
  return path.join(opts.chrootBaseDir ?? JAILER_DEFAULT_BASE, path.basename(execFile), assertJailerId(id), 'root');
}
