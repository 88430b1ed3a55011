import { constants } from 'node:fs';
import { access, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type CommandRunner, type ProcessLauncher, runChecked, systemLauncher, systemRunner } from '../../host/exec.js';
import type {
  LaunchOptions,
  VmLaunchSpec,
  VmmAvailability,
  VmmDriver,
  VmmHandle,
  VmmRunState,
  VmPaths,
} from '../types.js';
import type { CpuConfig, Logger } from './api-types.js';
import { FirecrackerClient } from './client.js';
import { findJailer, type Jail, prepareJail } from './jail.js';
import { buildJailerArgv, type JailerOptions } from './jailer.js';
import { buildLaunchPlan, firecrackerFiles } from './launch-plan.js';
import { hasFlag, isAlive, readCmdline, readPid, tail, waitFor } from './process.js';
import { assertAbsPath, assertId } from './validate.js';

export interface FirecrackerDriverOptions {
  /** Absolute path of the firecracker binary; otherwise it is searched in `pathEnv`. */
  binary?: string;
  /** A PATH-style list, passed in by the agent's config (no module but config reads process.env). */
  pathEnv?: string;
  runner?: CommandRunner;
  launcher?: ProcessLauncher;
  /** Environment of the spawned VMM; inherited when unset. */
  env?: NodeJS.ProcessEnv;
  /** Deadline for the API socket to answer, as firecracker-go-sdk's init timeout (3 s). */
  socketTimeoutMs?: number;
  apiTimeoutMs?: number;
  kvmDevice?: string;
  cpuinfoPath?: string;
  procRoot?: string;
  /**
   * The jailer and where its chroots go. Firecracker always runs under a jailer when one exists (this binary, else a
   * `jailer` beside firecracker or on PATH), as the VM's own user; uid/gid here serve launches given no user.
   */
  jailer?: Partial<JailerOptions>;
  logLevel?: Logger['level'];
  cpuConfig?: CpuConfig;
}

const JAIL_SOCKET = '/run/firecracker.socket';

export class FirecrackerDriver implements VmmDriver {
  readonly kind = 'firecracker' as const;
  /** InstanceStart could wait, but nothing needs it yet: the caller finishes the disk first. */
  readonly canHold = false;
  private readonly runner: CommandRunner;
  private readonly launcher: ProcessLauncher;
  private readonly procRoot: string;

  constructor(private readonly opts: FirecrackerDriverOptions = {}) {
    this.runner = opts.runner ?? systemRunner;
    this.launcher = opts.launcher ?? systemLauncher;
    this.procRoot = opts.procRoot ?? '/proc';
  }

  async resolveBinary(): Promise<string | null> {
    const candidates = this.opts.binary
      ? [this.opts.binary]
      : (this.opts.pathEnv ?? '')
          .split(':')
          .filter((d) => d.startsWith('/'))
          .map((d) => path.join(d, 'firecracker'));
    for (const c of candidates) {
      try {
        await access(c, constants.X_OK);
        if ((await stat(c)).isFile()) return c;
      } catch {
        // Not here; try the next directory.
      }
    }
    return null;
  }

  async availability(): Promise<VmmAvailability> {
    const reasons: string[] = [];
    let version: string | undefined;
    const binary = await this.resolveBinary();
    if (!binary) {
      reasons.push(
        this.opts.binary
          ? `firecracker binary ${this.opts.binary} is missing or not executable`
          : 'no firecracker binary on PATH (configure its path or install it)',
      );
    } else {
      const res = await this.runner
        .run(binary, ['--version'], { timeoutMs: 5000 })
        .catch((e: unknown) => ({ code: -1, stdout: '', stderr: String(e) }));
      const m = /Firecracker v?(\d+\.\d+\.\d+[^\s]*)/i.exec(`${res.stdout}\n${res.stderr}`);
      if (res.code !== 0 || !m) reasons.push(`${binary} --version failed: ${(res.stderr || res.stdout).trim()}`);
      else version = m[1];
    }
    const kvm = await this.kvmProblem();
    if (kvm) reasons.push(kvm);
    return reasons.length === 0
      ? { kind: 'firecracker', available: true, version, accel: 'kvm' }
      : { kind: 'firecracker', available: false, version, reason: reasons.join('; ') };
  }

  private async kvmProblem(): Promise<string | null> {
    const dev = this.opts.kvmDevice ?? '/dev/kvm';
    try {
      await access(dev, constants.R_OK | constants.W_OK);
    } catch {
      return `${dev} is missing or not read-write; Firecracker needs KVM and has no software emulation`;
    }
    const cpuinfo = await readFile(this.opts.cpuinfoPath ?? '/proc/cpuinfo', 'utf8').catch(() => '');
    if (!/^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo)) {
      return `${dev} exists but /proc/cpuinfo shows no vmx/svm: hardware virtualization is not usable here (nested KVM off), and Firecracker has no TCG fallback`;
    }
    return null;
  }

  async launch(spec: VmLaunchSpec, paths: VmPaths, launchOpts: LaunchOptions = {}): Promise<VmmHandle> {
    const planOpts = { logLevel: this.opts.logLevel, cpuConfig: this.opts.cpuConfig };
    let plan = buildLaunchPlan(spec, paths, planOpts);
    const binary = await this.resolveBinary();
    if (!binary) throw new Error('firecracker binary not found');
    assertAbsPath('firecracker binary', binary);
    const files = firecrackerFiles(paths);
    const jailer = await findJailer(binary, this.opts.jailer?.binary, this.opts.pathEnv);
    let jail: Jail | null = null;
    if (jailer) {
      const user = launchOpts.user ?? this.opts.jailer;
      if (user?.uid === undefined || user.gid === undefined)
        throw new Error('Firecracker runs under its jailer here, which needs a user to run it as');
      if (spec.incoming_state_path) throw new Error('restoring a snapshot under the jailer is not supported yet');
      jail = await prepareJail(spec, binary, jailer, { uid: user.uid, gid: user.gid }, this.opts.jailer);
      plan = buildLaunchPlan(jail.spec, paths, { ...planOpts, files: jail.files });
    }

    await mkdir(paths.dir, { recursive: true });
    await this.removeStaleSocket(paths.controlSocket);
    if (spec.vsock) await rm(files.vsock, { force: true });
    await this.ensureFifo(files.consoleIn);
    // Before v1.14 the logger and metrics files had to exist already.
    if (!jail) for (const f of [files.apiLog, files.metrics]) await writeFile(f, '', { flag: 'a' });

    const { command, args, detached } = await this.command(spec.vm_id, binary, paths, jail);
    // stdin: the console FIFO opened read-write, so Firecracker never sees EOF when no writer is attached.
    const started = await this.launcher.launch(command, args, {
      detached,
      stdio: [
        { path: files.consoleIn, flags: 'r+' },
        { path: paths.consoleLog, flags: 'a' },
        { path: paths.vmmLog, flags: 'a' },
      ],
      cwd: paths.dir,
      ...(this.opts.env ? { env: this.opts.env } : {}),
    });
    const exit: { how: string | null } = { how: null };
    void started.exited.then((how) => {
      exit.how = how;
    });
    const handle: VmmHandle = { vmId: spec.vm_id, pid: started.pid, paths };

    try {
      await this.waitForApi(paths.controlSocket, () => exit.how);
      if (jail?.options.newPidNs) {
        // In its own PID namespace Firecracker is the jailer's child: its host pid is in the jail's pid file.
        const jailPid = await readPid(path.join(jail.root, `${path.basename(binary)}.pid`));
        if (jailPid) handle.pid = jailPid;
      }
      await writeFile(paths.pidFile, `${handle.pid}\n`);
      const client = this.client(paths);
      for (const request of plan) await client.send(request);
    } catch (err) {
      await this.forceKill(handle).catch(() => undefined);
      if (exit.how && !(err instanceof Error && err.name === 'FirecrackerApiError')) {
        throw new Error(`firecracker ${exit.how} during launch: ${await tail(paths.vmmLog)}`, { cause: err });
      }
      throw err;
    }
    return handle;
  }

  async adopt(vmId: string, paths: VmPaths): Promise<VmmHandle | null> {
    assertId('vm_id', vmId);
    const pid = await readPid(paths.pidFile);
    if (!pid || !(await this.owns(pid, vmId, paths))) return null;
    try {
      const info = await this.client(paths, 2000).describeInstance();
      return info.id === vmId ? { vmId, pid, paths } : null;
    } catch {
      return null;
    }
  }

  async state(handle: VmmHandle): Promise<VmmRunState> {
    if (!(await isAlive(handle.pid, this.procRoot))) return 'shutdown';
    try {
      const info = await this.client(handle.paths, 2000).describeInstance();
      if (info.state === 'Running') return 'running';
      if (info.state === 'Paused') return 'paused';
      return 'unknown';
    } catch {
      return 'unknown';
    }
  }

  async pause(handle: VmmHandle): Promise<void> {
    await this.client(handle.paths).pause();
  }

  async resume(handle: VmmHandle): Promise<void> {
    await this.client(handle.paths).resume();
  }

  async ctrlAltDel(handle: VmmHandle): Promise<void> {
    await this.client(handle.paths).action('SendCtrlAltDel');
  }

  /** Firecracker has no SIGTERM handler: ask the guest (reboot=k makes Firecracker exit), then SIGKILL. */
  async stop(handle: VmmHandle, opts: { timeoutMs: number }): Promise<void> {
    if (await this.owns(handle.pid, handle.vmId, handle.paths)) {
      try {
        await this.client(handle.paths, Math.min(opts.timeoutMs, 2000)).action('SendCtrlAltDel');
        await waitFor(
          'firecracker to exit',
          async () => !(await isAlive(handle.pid, this.procRoot)),
          opts.timeoutMs,
          20,
        );
      } catch {
        await this.forceKill(handle);
        return;
      }
    }
    await this.cleanup(handle);
  }

  async kill(handle: VmmHandle): Promise<void> {
    await this.forceKill(handle);
  }

  /** Nothing of the host outlives the process here (the jailer's cgroup is its own). */
  async release(): Promise<void> {}

  private async forceKill(handle: VmmHandle): Promise<void> {
    if (handle.pid > 1 && (await this.owns(handle.pid, handle.vmId, handle.paths))) {
      try {
        process.kill(handle.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      await waitFor('firecracker to die', async () => !(await isAlive(handle.pid, this.procRoot)), 5000, 10);
    }
    await this.cleanup(handle);
  }

  /** Firecracker never removes its API socket; the pid file goes with the process. */
  private async cleanup(handle: VmmHandle): Promise<void> {
    await rm(handle.paths.controlSocket, { force: true });
    await rm(handle.paths.pidFile, { force: true });
  }

  /** The pid is alive and its argv names this VM: guards against pid reuse before any signal. */
  private async owns(pid: number, vmId: string, paths: VmPaths): Promise<boolean> {
    if (!(await isAlive(pid, this.procRoot))) return false;
    const argv = await readCmdline(pid, this.procRoot);
    if (!hasFlag(argv, '--id', vmId)) return false;
    return hasFlag(argv, '--api-sock', JAIL_SOCKET) || hasFlag(argv, '--api-sock', paths.controlSocket);
  }

  private client(paths: VmPaths, timeoutMs?: number): FirecrackerClient {
    return new FirecrackerClient(paths.controlSocket, { timeoutMs: timeoutMs ?? this.opts.apiTimeoutMs ?? 10_000 });
  }

  private async command(vmId: string, binary: string, paths: VmPaths, jail: Jail | null) {
    const jailer = jail?.options;
    if (!jailer) return { command: binary, args: ['--api-sock', paths.controlSocket, '--id', vmId], detached: true };
    const args = buildJailerArgv(jailer, vmId, binary, ['--api-sock', JAIL_SOCKET]);
    const hostSocket = path.join(jail.root, JAIL_SOCKET);
    await rm(hostSocket, { force: true });
    // connect() follows symlinks, so the rest of the driver keeps using paths.controlSocket.
    await symlink(hostSocket, paths.controlSocket);
    // --daemonize makes the jailer call setsid itself, which fails for a process that already leads a session.
    return { command: assertAbsPath('jailer binary', jailer.binary), args, detached: !jailer.daemonize };
  }

  private async removeStaleSocket(socket: string): Promise<void> {
    try {
      await lstat(socket);
    } catch {
      return;
    }
    const live = await new FirecrackerClient(socket, { timeoutMs: 500 }).describeInstance().then(
      () => true,
      () => false,
    );
    if (live) throw new Error(`API socket ${socket} is answered by a running Firecracker; refusing to replace it`);
    await rm(socket, { force: true });
  }

  private async ensureFifo(file: string): Promise<void> {
    const st = await lstat(file).catch(() => null);
    if (st?.isFIFO()) return;
    if (st) await rm(file, { force: true });
    await runChecked(this.runner, 'mkfifo', ['-m', '600', file]);
  }

  private async waitForApi(socket: string, exited: () => string | null): Promise<void> {
    const probe = new FirecrackerClient(socket, { timeoutMs: 1000 });
    await waitFor(
      `the Firecracker API on ${socket}`,
      async () => {
        const how = exited();
        if (how) throw new Error(`firecracker ${how} before its API socket answered`);
        if (
          !(await stat(socket).then(
            () => true,
            () => false,
          ))
        )
          return false;
        return probe.getMachineConfig().then(
          () => true,
          () => false,
        );
      },
      this.opts.socketTimeoutMs ?? 3000,
      10,
    );
  }
}
