import type { CpuTemplate, DriveSpec, NicSpec, RateLimiter, TokenBucket, VmLaunchSpec, VmPaths } from '../types.js';
import { InvalidLaunchSpec } from './errors.js';

export type Accel = 'kvm' | 'tcg';

export interface QemuArgsOptions {
  accel: Accel;
  /**
   * Host TSC rate. Under TCG the guest TSC runs at the host's rate, and the guest's PIT calibration fails
   * when the host is busy (the kernel then hangs at boot), so TCG guests get `tsc_early_khz` and
   * `tsc=reliable` on their command line when this is known.
   */
  hostTscKhz?: number;
  /** Start with the vCPUs stopped (`-S`); the driver sends `cont` when the guest may run. */
  paused?: boolean;
  /**
   * The control and console sockets come bound and listening as fds 3 and 4 (the launcher binds them; the VMM needs no
   * write access to its directory) instead of being bound by QEMU at their paths.
   */
  socketFds?: boolean;
  /** TCG's translation cache in MiB (QEMU's default is up to 1 GiB, which a memory-limited VMM cannot afford). */
  tbSizeMib?: number;
}

/** Descriptors the launcher hands a VMM started with `socketFds`. */
export const SOCKET_FDS = { control: 3, console: 4 } as const;

/** Seccomp with every optional permission denied: no obsolete calls, no setuid, no fork/exec, no scheduler tuning. */
export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

// No commas (QEMU's option separator), spaces or shell metacharacters.
const SAFE_PATH_RE = /^\/[A-Za-z0-9._+/-]*$/;
const ID_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const VM_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const TAP_RE = /^[a-zA-Z0-9_.-]{1,15}$/;
const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
// sun_path is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH = 107;
const LOG_ITEMS = new Set(['guest_errors', 'unimp']);
// QEMU's THROTTLE_VALUE_MAX.
const THROTTLE_MAX = 1e15;

/** QEMU ids must start with a letter, Firecracker's need not: every device id gets a prefix. */
export const qemuIds = {
  drive: (driveId: string) => `drive-${driveId}`,
  blockDevice: (driveId: string) => `blk-${driveId}`,
  netdev: (ifaceId: string) => `net-${ifaceId}`,
  nicDevice: (ifaceId: string) => `nic-${ifaceId}`,
  balloon: 'balloon0',
  rng: 'rng0',
  vsock: 'vsock0',
  console: 'con0',
  control: 'qmp0',
  ram: 'ram0',
} as const;

/**
 * Guest RAM lives in this shared file in the VM's directory, so a migration with `x-ignore-shared` saves
 * device state only and snapshots copy (or diff) the RAM file themselves; a restore maps the file back.
 */
export function guestRamPath(paths: Pick<VmPaths, 'dir'>): string {
  return `${paths.dir.replace(/\/+$/, '')}/guest.ram`;
}

/** QEMU -cpu per Firecracker static template: the closest 7.2 model; `None` gets `host` (KVM) / `max` (TCG). */
export const CPU_MODELS: Readonly<Record<Exclude<CpuTemplate, 'None'>, string>> = {
  C3: 'IvyBridge-IBRS',
  T2: 'Haswell-noTSX-IBRS',
  T2S: 'Haswell-noTSX-IBRS',
  T2CL: 'Cascadelake-Server-noTSX',
  T2A: 'EPYC-Milan',
};

export function validatePath(field: string, value: string, maxLength = 4096): string {
  if (
    typeof value !== 'string' ||
    !SAFE_PATH_RE.test(value) ||
    value.length > maxLength ||
    value.split('/').some((seg) => seg === '..')
  ) {
    throw new InvalidLaunchSpec(field, value, `must be an absolute path of [A-Za-z0-9._+/-] (max ${maxLength})`);
  }
  return value;
}

export function validateId(field: string, value: string): string {
  if (typeof value !== 'string' || !ID_RE.test(value)) {
    throw new InvalidLaunchSpec(field, value, `must match ${ID_RE.source}`);
  }
  return value;
}

function validateInt(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidLaunchSpec(field, value, `must be an integer in [${min}, ${max}]`);
  }
  return value;
}

function validateTap(field: string, value: string): string {
  if (typeof value !== 'string' || !TAP_RE.test(value) || value === '.' || value === '..') {
    throw new InvalidLaunchSpec(field, value, `must match ${TAP_RE.source}`);
  }
  return value;
}

function validateMac(field: string, value: string): string {
  if (typeof value !== 'string' || !MAC_RE.test(value)) {
    throw new InvalidLaunchSpec(field, value, 'must be a MAC like 02:00:00:00:00:01');
  }
  if (Number.parseInt(value.slice(0, 2), 16) & 1) throw new InvalidLaunchSpec(field, value, 'must be unicast');
  return value.toLowerCase();
}

function validateBootArgs(value: string): string {
  // Passed as one argv element (no shell); only printable ASCII within the x86 command line limit.
  if (typeof value !== 'string' || value.length > 2000 || !/^[\x20-\x7e]*$/.test(value)) {
    throw new InvalidLaunchSpec('boot_args', value, 'must be printable ASCII, at most 2000 characters');
  }
  return value;
}

function bucketRate(field: string, b: TokenBucket | undefined): { rate: number; burst: number } | null {
  if (!b) return null;
  validateInt(`${field}.size`, b.size, 0, Number.MAX_SAFE_INTEGER);
  validateInt(`${field}.refill_time`, b.refill_time, 0, Number.MAX_SAFE_INTEGER);
  if (b.one_time_burst !== undefined)
    validateInt(`${field}.one_time_burst`, b.one_time_burst, 0, Number.MAX_SAFE_INTEGER);
  // Firecracker: size 0 or refill_time 0 means no limit
  if (b.size === 0 || b.refill_time === 0) return null;
  const rate = Math.max(1, Math.floor((b.size * 1000) / b.refill_time));
  return { rate: Math.min(rate, THROTTLE_MAX), burst: Math.min(b.size + (b.one_time_burst ?? 0), THROTTLE_MAX) };
}

/**
 * Maps a Firecracker rate limiter onto QEMU throttling keys (`bps-total`, `bps-total-max`, ...).
 * The refill rate becomes the base rate; Firecracker's full bucket (size + one_time_burst) becomes a
 * 1-second burst at `*-max`, which gives QEMU a bucket of the same capacity.
 */
export function throttleFromRateLimiter(field: string, rl: RateLimiter | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  const apply = (kind: 'bps' | 'iops', b: TokenBucket | undefined, sub: string) => {
    const r = bucketRate(`${field}.${sub}`, b);
    if (!r) return;
    out[`${kind}-total`] = r.rate;
    if (r.burst > r.rate) {
      out[`${kind}-total-max`] = r.burst;
      out[`${kind}-total-max-length`] = 1;
    }
  };
  apply('bps', rl?.bandwidth, 'bandwidth');
  apply('iops', rl?.ops, 'ops');
  return out;
}

function driveArgs(d: DriveSpec, i: number): string[] {
  const field = `drives[${i}]`;
  const id = validateId(`${field}.drive_id`, d.drive_id);
  const file = validatePath(`${field}.path`, d.path);
  if (d.cache_type !== 'Unsafe' && d.cache_type !== 'Writeback') {
    throw new InvalidLaunchSpec(`${field}.cache_type`, d.cache_type, 'must be Unsafe or Writeback');
  }
  if (d.io_engine !== 'Sync' && d.io_engine !== 'Async') {
    throw new InvalidLaunchSpec(`${field}.io_engine`, d.io_engine, 'must be Sync or Async');
  }
  const opts = [
    'if=none',
    `id=${qemuIds.drive(id)}`,
    `file=${file}`,
    'format=raw',
    `readonly=${d.is_read_only ? 'on' : 'off'}`,
    `cache=${d.cache_type === 'Unsafe' ? 'unsafe' : 'writeback'}`,
    `aio=${d.io_engine === 'Async' ? 'io_uring' : 'threads'}`,
    ...Object.entries(throttleFromRateLimiter(`${field}.rate_limiter`, d.rate_limiter)).map(
      ([k, v]) => `throttling.${k}=${v}`,
    ),
  ];
  return [
    '-drive',
    opts.join(','),
    '-device',
    `virtio-blk-device,drive=${qemuIds.drive(id)},id=${qemuIds.blockDevice(id)}`,
  ];
}

function nicArgs(n: NicSpec, i: number): string[] {
  const field = `nics[${i}]`;
  const id = validateId(`${field}.iface_id`, n.iface_id);
  const tap = validateTap(`${field}.tap`, n.tap);
  const mac = validateMac(`${field}.mac`, n.mac);
  return [
    '-netdev',
    `tap,id=${qemuIds.netdev(id)},ifname=${tap},script=no,downscript=no`,
    '-device',
    `virtio-net-device,netdev=${qemuIds.netdev(id)},mac=${mac},id=${qemuIds.nicDevice(id)}`,
  ];
}

function uniqueIds(field: string, ids: readonly string[]): void {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) throw new InvalidLaunchSpec(field, id, 'duplicate id');
    seen.add(id);
  }
}

/** Firecracker appends `root=/dev/vda rw|ro` for the root drive; do the same unless boot_args set root=. */
export function effectiveBootArgs(spec: VmLaunchSpec, opts: QemuArgsOptions): string {
  const parts = [validateBootArgs(spec.boot_args)];
  const root = spec.drives.find((d) => d.is_root_device);
  if (root && !/(^|\s)root=/.test(spec.boot_args)) parts.push(`root=/dev/vda ${root.is_read_only ? 'ro' : 'rw'}`);
  if (opts.accel === 'tcg' && opts.hostTscKhz !== undefined && !/(^|\s)tsc_early_khz=/.test(spec.boot_args)) {
    parts.push(`tsc_early_khz=${validateInt('hostTscKhz', opts.hostTscKhz, 1, 100_000_000)} tsc=reliable`);
  }
  return parts.join(' ').trim();
}

/** The full QEMU argv (without the binary) for a launch spec. Throws InvalidLaunchSpec on any bad value. */
export function buildQemuArgs(spec: VmLaunchSpec, paths: VmPaths, opts: QemuArgsOptions): string[] {
  if (typeof spec.vm_id !== 'string' || !VM_ID_RE.test(spec.vm_id)) {
    throw new InvalidLaunchSpec('vm_id', spec.vm_id, `must match ${VM_ID_RE.source}`);
  }
  const vcpu = validateInt('vcpu', spec.vcpu, 1, 32);
  const mem = validateInt('mem_mib', spec.mem_mib, 16, 1024 * 1024);
  if (spec.smt && vcpu > 1 && vcpu % 2 !== 0) throw new InvalidLaunchSpec('vcpu', vcpu, 'must be 1 or even with smt');
  const threads = spec.smt && vcpu > 1 ? 2 : 1;
  let cpu: string;
  if (spec.cpu_template === 'None') cpu = opts.accel === 'kvm' ? 'host' : 'max';
  else if (Object.hasOwn(CPU_MODELS, spec.cpu_template)) cpu = CPU_MODELS[spec.cpu_template];
  else throw new InvalidLaunchSpec('cpu_template', spec.cpu_template, 'must be C3, T2, T2S, T2CL, T2A or None');
  if (opts.accel !== 'kvm' && opts.accel !== 'tcg') throw new InvalidLaunchSpec('accel', opts.accel, 'kvm or tcg');

  const controlSocket = validatePath('paths.controlSocket', paths.controlSocket, MAX_SOCKET_PATH);
  const consoleSocket = validatePath('paths.consoleSocket', paths.consoleSocket, MAX_SOCKET_PATH);
  const consoleLog = validatePath('paths.consoleLog', paths.consoleLog);
  const vmmLog = validatePath('paths.vmmLog', paths.vmmLog);
  const pidFile = validatePath('paths.pidFile', paths.pidFile);

  uniqueIds(
    'drives.drive_id',
    spec.drives.map((d) => d.drive_id),
  );
  uniqueIds(
    'nics.iface_id',
    spec.nics.map((n) => n.iface_id),
  );
  if (spec.drives.filter((d) => d.is_root_device).length > 1) {
    throw new InvalidLaunchSpec('drives', spec.drives.length, 'at most one root device');
  }
  // The root device comes first so the guest sees it as /dev/vda, as under Firecracker.
  const drives = [...spec.drives].sort((a, b) => Number(b.is_root_device) - Number(a.is_root_device));

  const argv = [
    '-name',
    `nqvm-${spec.vm_id}`,
    '-M',
    // pit/pic/rtc stay on: the guest kernel calibrates its TSC against the PIT when not told the rate
    `microvm,acpi=on,memory-backend=${qemuIds.ram}`,
    '-accel',
    opts.accel === 'tcg' && opts.tbSizeMib !== undefined
      ? `tcg,tb-size=${validateInt('tbSizeMib', opts.tbSizeMib, 32, 4096)}`
      : opts.accel,
    '-cpu',
    cpu,
    '-smp',
    `${vcpu},sockets=1,cores=${vcpu / threads},threads=${threads}`,
    '-m',
    `${mem}M`,
    '-object',
    `memory-backend-file,id=${qemuIds.ram},size=${mem}M,mem-path=${validatePath('paths.dir', guestRamPath(paths))},share=on`,
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    validatePath('kernel_path', spec.kernel_path),
  ];
  if (spec.initrd_path !== undefined) argv.push('-initrd', validatePath('initrd_path', spec.initrd_path));
  argv.push('-append', effectiveBootArgs(spec, opts));
  drives.forEach((d) => {
    argv.push(...driveArgs(d, spec.drives.indexOf(d)));
  });
  spec.nics.forEach((n, i) => {
    argv.push(...nicArgs(n, i));
  });
  if (spec.balloon) {
    validateInt('balloon.amount_mib', spec.balloon.amount_mib, 0, mem);
    validateInt('balloon.stats_polling_interval_s', spec.balloon.stats_polling_interval_s, 0, 86400);
    argv.push(
      '-device',
      `virtio-balloon-device,id=${qemuIds.balloon},deflate-on-oom=${spec.balloon.deflate_on_oom ? 'on' : 'off'}`,
    );
  }
  if (spec.entropy) {
    const quota = bucketRate('entropy.rate_limiter.bandwidth', spec.entropy.rate_limiter?.bandwidth);
    const limit = quota
      ? `,max-bytes=${spec.entropy.rate_limiter?.bandwidth?.size},period=${spec.entropy.rate_limiter?.bandwidth?.refill_time}`
      : '';
    argv.push(
      '-object',
      `rng-random,id=${qemuIds.rng},filename=/dev/urandom`,
      '-device',
      `virtio-rng-device,rng=${qemuIds.rng}${limit}`,
    );
  }
  if (spec.vsock) {
    const cid = validateInt('vsock.guest_cid', spec.vsock.guest_cid, 3, 0xfffffffe);
    argv.push('-device', `vhost-vsock-device,id=${qemuIds.vsock},guest-cid=${cid}`);
  }
  const consoleAt = opts.socketFds ? `fd=${SOCKET_FDS.console}` : `path=${consoleSocket}`;
  argv.push(
    '-chardev',
    `socket,id=${qemuIds.console},${consoleAt},server=on,wait=off,logfile=${consoleLog},logappend=on`,
    '-serial',
    `chardev:${qemuIds.console}`,
    ...(opts.socketFds
      ? [
          '-chardev',
          `socket,id=${qemuIds.control},fd=${SOCKET_FDS.control},server=on,wait=off`,
          '-mon',
          `chardev=${qemuIds.control},mode=control`,
        ]
      : ['-qmp', `unix:${controlSocket},server=on,wait=off`]),
    '-sandbox',
    QEMU_SANDBOX,
    '-D',
    vmmLog,
    '-msg',
    'timestamp=on',
    '-pidfile',
    pidFile,
  );
  if (spec.log_items?.length) {
    for (const item of spec.log_items)
      if (!LOG_ITEMS.has(item)) throw new InvalidLaunchSpec('log_items', item, `must be one of ${[...LOG_ITEMS]}`);
    argv.push('-d', spec.log_items.join(','));
  }
  if (spec.incoming_state_path !== undefined) {
    validatePath('incoming_state_path', spec.incoming_state_path);
    // The stream is fed after QMP sets x-ignore-shared (7.2 has no command-line switch for it): see the driver.
    argv.push('-incoming', 'defer');
  }
  if (opts.paused) argv.push('-S');
  return argv;
}
