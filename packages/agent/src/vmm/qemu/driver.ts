import { constants } from 'node:fs';
import { access, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import {
  type CgroupJoin,
  type CommandRunner,
  type ProcessLauncher,
  systemLauncher,
  systemRunner,
} from '../../host/exec.js';
import { detectCgroups, VmmCgroups } from '../cgroups.js';
import {
  assertReadableByAnyone,
  assertVmmUser,
  closeVmDir,
  deviceNumbers,
  giveFile,
  inside,
  openDeviceNodes,
  type VmmUser,
} from '../confine.js';
import type {
  LaunchOptions,
  VmLaunchSpec,
  VmmAvailability,
  VmmDriver,
  VmmHandle,
  VmmRunState,
  VmPaths,
} from '../types.js';
import { type Accel, buildQemuArgs, guestRamPath, qemuIds, validatePath } from './args.js';
import { VmmFeatureUnavailable, VmmLaunchFailed } from './errors.js';
import { openFd } from './fd-passing.js';
import { type QmpClient, withQmp } from './qmp.js';

export interface QemuDriverOptions {
  binary?: string;
  runner?: CommandRunner;
  launcher?: ProcessLauncher;
  /** Force an accelerator instead of probing /proc/cpuinfo and /dev/kvm. */
  accel?: Accel;
  /** How long launch() waits for QMP to answer. */
  startTimeoutMs?: number;
  /**
   * Argv put before the QEMU binary, e.g. `['ip', 'netns', 'exec', ns]` to run it in a network namespace.
   * It must exec QEMU in place so the spawned pid stays QEMU's.
   */
  launchPrefix?: readonly string[];
  procRoot?: string;
  devKvm?: string;
  devVhostVsock?: string;
  devTun?: string;
  /** Where confined VMMs get their cgroups; null: none (default: detected under /sys/fs/cgroup). */
  cgroups?: VmmCgroups | null;
}

const MIB = 1024 * 1024;
/** TCG's translation cache, bounded so that it fits the VMM's memory limit. */
const TB_SIZE_MIB = 256;
/** What QEMU itself may use above guest RAM (its heap, device state, I/O buffers), on top of the TCG cache. */
const VMM_OVERHEAD_MIB = 256;
/** Nodes every VMM may open: /dev/null (its stdin), zero and the random sources. */
const BASE_DEVICE_NODES = ['/dev/null', '/dev/zero', '/dev/random', '/dev/urandom'];

const poll = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Alive and not a zombie (a reparented QEMU may linger as one until its new parent reaps it). */
export async function isProcessAlive(pid: number, procRoot = '/proc'): Promise<boolean> {
  try {
    const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function waitForExit(pid: number, timeoutMs: number, procRoot: string): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!(await isProcessAlive(pid, procRoot))) return true;
    await poll(50);
  }
  return !(await isProcessAlive(pid, procRoot));
}

const STATUS_MAP: Readonly<Record<string, VmmRunState>> = {
  running: 'running',
  paused: 'paused',
  postmigrate: 'paused',
  inmigrate: 'paused',
  prelaunch: 'held',
  'finish-migrate': 'paused',
  'save-vm': 'paused',
  'restore-vm': 'paused',
  suspended: 'paused',
  debug: 'paused',
  'io-error': 'paused',
  watchdog: 'paused',
  colo: 'paused',
  shutdown: 'shutdown',
  'guest-panicked': 'shutdown',
  'internal-error': 'shutdown',
};

/** Runs VMs as detached `qemu-system-x86_64 -M microvm` processes controlled over QMP. */
export class QemuDriver implements VmmDriver {
  readonly kind = 'qemu' as const;
  readonly canHold = true;
  private readonly binary: string;
  private readonly runner: CommandRunner;
  private readonly launcher: ProcessLauncher;
  private readonly procRoot: string;
  private accelCache: Promise<Accel> | undefined;
  private cgroupsCache: Promise<VmmCgroups | null> | undefined;

  constructor(private readonly opts: QemuDriverOptions = {}) {
    this.binary = opts.binary ?? 'qemu-system-x86_64';
    this.runner = opts.runner ?? systemRunner;
    this.launcher = opts.launcher ?? systemLauncher;
    this.procRoot = opts.procRoot ?? '/proc';
  }

  async availability(): Promise<VmmAvailability> {
    let version: string | undefined;
    try {
      const res = await this.runner.run(this.binary, ['--version'], { timeoutMs: 10_000 });
      if (res.code !== 0) return { kind: 'qemu', available: false, reason: res.stderr.trim() || `exit ${res.code}` };
      version = /version\s+(\S+)/.exec(res.stdout)?.[1];
    } catch (e) {
      return { kind: 'qemu', available: false, reason: `${this.binary}: ${(e as Error).message}` };
    }
    return { kind: 'qemu', available: true, version, accel: await this.accel() };
  }

  /** KVM when the CPU advertises vmx/svm and /dev/kvm opens read-write, TCG otherwise. */
  accel(): Promise<Accel> {
    this.accelCache ??= (async (): Promise<Accel> => {
      if (this.opts.accel) return this.opts.accel;
      const cpuinfo = await readFile(`${this.procRoot}/cpuinfo`, 'utf8').catch(() => '');
      if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) return 'tcg';
      try {
        const fh = await open(this.opts.devKvm ?? '/dev/kvm', 'r+');
        await fh.close();
        return 'kvm';
      } catch {
        return 'tcg';
      }
    })();
    return this.accelCache;
  }

  private cgroups(): Promise<VmmCgroups | null> {
    this.cgroupsCache ??=
      this.opts.cgroups !== undefined
        ? Promise.resolve(this.opts.cgroups)
        : detectCgroups().then((layout) => (layout ? new VmmCgroups(layout) : null));
    return this.cgroupsCache;
  }

  /**
   * Gives a confined VMM what it needs and nothing more: the device nodes it opens, its directory to pass through,
   * its own files (logs, pid file, RAM file, the disks in its directory) and a cgroup with the VM's limits.
   */
  private async confine(spec: VmLaunchSpec, paths: VmPaths, user: VmmUser, accel: Accel): Promise<CgroupJoin[]> {
    const nodes = [
      ...(spec.nics.length ? [this.opts.devTun ?? '/dev/net/tun'] : []),
      ...(accel === 'kvm' ? [this.opts.devKvm ?? '/dev/kvm'] : []),
      ...(spec.vsock ? [this.opts.devVhostVsock ?? '/dev/vhost-vsock'] : []),
    ];
    await openDeviceNodes(nodes);
    await closeVmDir(paths.dir, user);
    for (const file of [paths.consoleLog, paths.vmmLog, paths.pidFile, guestRamPath(paths)]) await giveFile(file, user);
    for (const d of spec.drives) {
      if (inside(paths.dir, d.path)) await giveFile(d.path, user);
      else await assertReadableByAnyone(d.path);
    }
    for (const file of [spec.kernel_path, spec.initrd_path]) if (file) await assertReadableByAnyone(file);
    const cgroups = await this.cgroups();
    if (!cgroups) return [];
    const overhead = VMM_OVERHEAD_MIB + (accel === 'tcg' ? TB_SIZE_MIB : 0);
    return cgroups.create(spec.vm_id, {
      vcpu: spec.vcpu,
      memoryBytes: (spec.mem_mib + overhead) * MIB,
      devices: await Promise.all([...BASE_DEVICE_NODES, ...nodes].map(deviceNumbers)),
    });
  }

  private async hostTscKhz(): Promise<number | undefined> {
    const cpuinfo = await readFile(`${this.procRoot}/cpuinfo`, 'utf8').catch(() => '');
    const mhz = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo)?.[1];
    return mhz ? Math.round(Number(mhz) * 1000) : undefined;
  }

  async launch(spec: VmLaunchSpec, paths: VmPaths, opts: LaunchOptions = {}): Promise<VmmHandle> {
    const accel = await this.accel();
    // A restore is paused by `-incoming` already and resumed by its caller; holding applies to cold boots.
    const hold = spec.incoming_state_path === undefined ? opts.holdUntil : undefined;
    hold?.catch(() => undefined);
    const user = opts.user ? assertVmmUser(opts.user) : undefined;
    if (user && this.opts.launchPrefix?.length)
      throw new VmmLaunchFailed(spec.vm_id, 'a confined VMM cannot start under a launch prefix (it has no privileges)');
    const argv = buildQemuArgs(spec, paths, {
      accel,
      hostTscKhz: accel === 'tcg' ? await this.hostTscKhz() : undefined,
      paused: hold !== undefined,
      socketFds: user !== undefined,
      ...(accel === 'tcg' ? { tbSizeMib: TB_SIZE_MIB } : {}),
    });
    if (spec.vsock) {
      const dev = this.opts.devVhostVsock ?? '/dev/vhost-vsock';
      await access(dev, constants.R_OK | constants.W_OK).catch(() => {
        throw new VmmFeatureUnavailable('vsock', `${dev} is missing (modprobe vhost_vsock)`);
      });
    }
    await mkdir(paths.dir, { recursive: true });
    for (const stale of [paths.controlSocket, paths.consoleSocket, paths.pidFile]) await rm(stale, { force: true });
    // A cold boot starts from empty RAM; a restore maps the RAM file the snapshot put in place.
    if (spec.incoming_state_path === undefined) await rm(guestRamPath(paths), { force: true });
    const cgroups = user ? await this.confine(spec, paths, user, accel) : [];

    let exited: string | null = null;
    // Own session and no pipes to us: an agent restart or crash must not take the VM with it.
    const [cmd, ...prefixArgs] = [...(this.opts.launchPrefix ?? []), this.binary];
    const started = await this.launcher
      .launch(cmd ?? this.binary, [...prefixArgs, ...argv], {
        detached: true,
        stdio: ['ignore', { path: paths.vmmLog, flags: 'a' }, { path: paths.vmmLog, flags: 'a' }],
        // Handed over as fds 3 and 4, as buildQemuArgs expects them (SOCKET_FDS).
        ...(user
          ? { uid: user.uid, gid: user.gid, env: {}, cgroups, listen: [paths.controlSocket, paths.consoleSocket] }
          : {}),
      })
      .catch(async (e: Error) => {
        await this.release(spec.vm_id);
        throw new VmmLaunchFailed(spec.vm_id, e.message);
      });
    void started.exited.then((how) => {
      exited = how;
    });
    const pid = started.pid;

    const handle: VmmHandle = { vmId: spec.vm_id, pid, paths };
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 15_000);
    let lastError = '';
    let ready = false;
    while (!ready && !exited && Date.now() < deadline) {
      try {
        await withQmp(paths.controlSocket, (qmp) => qmp.execute('query-version'), { timeoutMs: 2000 });
        ready = true;
      } catch (e) {
        lastError = (e as Error).message;
        await poll(30);
      }
    }
    let up = false;
    if (ready) {
      try {
        await withQmp(paths.controlSocket, (qmp) => this.afterStart(qmp, spec), { fds: true });
        // QEMU writes -pidfile itself before QMP listens; keep ours authoritative in case it did not.
        await writeFile(paths.pidFile, `${pid}\n`);
        up = true;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    if (up && !hold) return handle;
    if (up && hold) {
      // The caller's work failed: its error is the launch's, and the held VMM goes.
      const failed = await hold.then(
        () => undefined,
        (e: unknown) => e ?? new Error('the held launch was abandoned'),
      );
      if (failed !== undefined) {
        await this.kill(handle);
        throw failed;
      }
      try {
        await withQmp(paths.controlSocket, (qmp) => qmp.execute('cont'));
        return handle;
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
    if (!exited) await this.kill(handle);
    const tail = await readFile(paths.vmmLog, 'utf8').catch(() => '');
    throw new VmmLaunchFailed(
      spec.vm_id,
      `${exited ?? lastError}; log: ${tail.trim().split('\n').slice(-5).join(' | ')}`,
    );
  }

  /** Runtime settings QEMU only takes over QMP: the balloon target and its statistics polling. */
  private async afterStart(qmp: QmpClient, spec: VmLaunchSpec): Promise<void> {
    if (spec.incoming_state_path) {
      const source = validatePath('incoming_state_path', spec.incoming_state_path);
      // RAM comes from the shared file, the stream only carries device state (as when it was saved).
      await qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'x-ignore-shared', state: true }],
      });
      // QEMU may not open files or start processes itself (-sandbox): the agent opens the stream and hands it over.
      await qmp.passFd('incoming', await openFd(source, 'r'));
      await qmp.execute('migrate-incoming', { uri: 'fd:incoming' });
      // A `cont` before the stream is loaded is overridden by the saved run state, so finish the load first.
      const deadline = Date.now() + (this.opts.startTimeoutMs ?? 60_000);
      for (;;) {
        const { status } = await qmp.execute<{ status: string }>('query-status');
        if (status !== 'inmigrate') break;
        if (Date.now() > deadline) throw new VmmLaunchFailed(spec.vm_id, 'restoring the saved state timed out');
        await poll(20);
      }
      return;
    }
    if (!spec.balloon) return;
    if (spec.balloon.stats_polling_interval_s > 0) {
      await qmp.execute('qom-set', {
        path: `/machine/peripheral/${qemuIds.balloon}`,
        property: 'guest-stats-polling-interval',
        value: spec.balloon.stats_polling_interval_s,
      });
    }
    // QMP balloon takes the target guest RAM, Firecracker the balloon size.
    if (spec.balloon.amount_mib > 0) {
      await qmp.execute('balloon', { value: (spec.mem_mib - spec.balloon.amount_mib) * 1024 * 1024 });
    }
  }

  async adopt(vmId: string, paths: VmPaths): Promise<VmmHandle | null> {
    const pid = Number.parseInt(await readFile(paths.pidFile, 'utf8').catch(() => ''), 10);
    if (!Number.isInteger(pid) || pid <= 1 || !(await isProcessAlive(pid, this.procRoot))) return null;
    const argv = (await readFile(`${this.procRoot}/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    // pid reuse: only a QEMU named for this VM is ours
    if (argv[argv.indexOf('-name') + 1] !== `nqvm-${vmId}`) return null;
    try {
      await withQmp(paths.controlSocket, (qmp) => qmp.execute('query-status'), { timeoutMs: 3000 });
    } catch {
      return null;
    }
    return { vmId, pid, paths };
  }

  async state(handle: VmmHandle): Promise<VmmRunState> {
    if (!(await isProcessAlive(handle.pid, this.procRoot))) return 'shutdown';
    try {
      const status = await withQmp(handle.paths.controlSocket, (qmp) =>
        qmp.execute<{ status: string }>('query-status'),
      );
      return STATUS_MAP[status.status] ?? 'unknown';
    } catch {
      return (await isProcessAlive(handle.pid, this.procRoot)) ? 'unknown' : 'shutdown';
    }
  }

  async pause(handle: VmmHandle): Promise<void> {
    await withQmp(handle.paths.controlSocket, (qmp) => qmp.execute('stop'));
  }

  async resume(handle: VmmHandle): Promise<void> {
    await withQmp(handle.paths.controlSocket, (qmp) => qmp.execute('cont'));
  }

  /** microvm has no i8042, so Ctrl-Alt-Del is the ACPI power button, as Firecracker does for ACPI guests. */
  async ctrlAltDel(handle: VmmHandle): Promise<void> {
    await withQmp(handle.paths.controlSocket, (qmp) => qmp.execute('system_powerdown'));
  }

  async stop(handle: VmmHandle, opts: { timeoutMs: number }): Promise<void> {
    if (!(await isProcessAlive(handle.pid, this.procRoot))) return this.release(handle.vmId);
    await this.ctrlAltDel(handle).catch(() => undefined);
    if (await waitForExit(handle.pid, opts.timeoutMs, this.procRoot)) return this.release(handle.vmId);
    await withQmp(handle.paths.controlSocket, (qmp) => qmp.execute('quit'), { timeoutMs: 2000 }).catch(() => undefined);
    if (await waitForExit(handle.pid, 2000, this.procRoot)) return this.release(handle.vmId);
    await this.kill(handle);
  }

  async kill(handle: VmmHandle): Promise<void> {
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
    await waitForExit(handle.pid, 5000, this.procRoot);
    await this.release(handle.vmId);
  }

  async release(vmId: string): Promise<void> {
    await (await this.cgroups())?.remove(vmId);
  }

  /**
   * Pauses the guest and saves its device state to `file` with QMP migrate (`x-ignore-shared`: guest RAM stays
   * in `guestRamPath`, which the caller copies while the VM is paused). The VM stays paused (`postmigrate`):
   * resume() continues it; a launch with `incoming_state_path` and that RAM file in its directory restores it.
   */
  async saveState(handle: VmmHandle, file: string, opts: { timeoutMs?: number } = {}): Promise<void> {
    const target = validatePath('file', file);
    await access(guestRamPath(handle.paths)).catch(() => {
      throw new VmmFeatureUnavailable('snapshot', 'the VM was started without a shared RAM file; restart it first');
    });
    await withQmp(
      handle.paths.controlSocket,
      async (qmp) => {
        await qmp.execute('stop');
        await qmp.execute('migrate-set-capabilities', {
          capabilities: [{ capability: 'x-ignore-shared', state: true }],
        });
        // 7.2 caps migration at 128 MiB/s by default
        await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 1024 ** 4 });
        // Opened here (the VMM may not open it, nor start a process to write it): a new file only root can read.
        await qmp.passFd('snapshot', await openFd(target, 'wx', 0o600));
        await qmp.execute('migrate', { uri: 'fd:snapshot' });
        const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
        while (Date.now() < deadline) {
          const info = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
          if (info.status === 'completed') return;
          if (info.status === 'failed' || info.status === 'cancelled') {
            throw new Error(`saving state of ${handle.vmId} ${info.status}: ${info['error-desc'] ?? ''}`);
          }
          await poll(50);
        }
        await qmp.execute('migrate_cancel').catch(() => undefined);
        throw new Error(`saving state of ${handle.vmId} timed out`);
      },
      { fds: true },
    );
  }
}
