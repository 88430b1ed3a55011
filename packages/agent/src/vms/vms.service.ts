import { chmod, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentVmSpec, AgentVmStatus, VmExitReport, VmmKind } from '@nqvm/api';
import type { Logger } from 'pino';
import { prepareDevices, withDevices } from '../devices/drives.ts';
import { type CommandRunner, systemRunner } from '../host/exec.ts';
import type { ImageCache } from '../images/cache.ts';
import { ImageFetchFailed } from '../images/cache.ts';
import { type HostNetwork, tapNameFor } from '../net/index.ts';
import { copyImage, Ext4Image, PlanError, prepareRootfs, RootfsPrepareError } from '../rootfs/index.ts';
import { resumeCutSave } from '../snapshots/paused-for-save.ts';
import { isProcessAlive } from '../vmm/qemu/index.ts';
import type { VmmAvailability, VmmDriver, VmmHandle } from '../vmm/types.ts';
import { BaseImages } from './base-images.ts';
import { launchSpec } from './boot-plan.ts';
import { AgentError, BootFailed, type BootStep, VmmNotAvailable, VmNotFound, VmNotRunning } from './errors.ts';
import { exitReason } from './exit-reason.ts';
import type { GuestTools } from './guest-tools.ts';
import { assertVmId, type RunInfo, readRun, readSpec, type VmFiles, vmFiles, writeRun, writeSpec } from './layout.ts';
import { type PhaseClock, phaseClock } from './phase-clock.ts';
import { SpareDisks } from './spare-disks.ts';
import { VmNics } from './vm-nics.ts';
import { type VmmUserRange, VmmUsers } from './vmm-users.ts';

export interface VmServiceDeps {
  dataDir: string;
  drivers: ReadonlyMap<VmmKind, VmmDriver>;
  network: HostNetwork;
  images: ImageCache;
  guestTools: GuestTools;
  /** Port of the guest endpoint on each bridge gateway, written into the guest agent's config. */
  guestPort: number;
  /** Starts the guest endpoint on a bridge's gateway address. */
  guestEndpoint(address: string): Promise<unknown>;
  reportExit(report: VmExitReport): Promise<void>;
  log: Logger;
  runner?: CommandRunner;
  now?: () => Date;
  /** Features that follow a VM's NICs (MMDS anti-spoofing) hook in here. */
  hooks?: VmHooks;
  /** The reserved range each VMM gets its own unprivileged user from. */
  vmmUsers?: VmmUserRange;
}

export interface VmHooks {
  /**
   * Guards the VM's TAPs (it gets their names; they may not exist yet). TAPs the agent makes: alongside their
   * creation, before the VMM starts. TAPs QEMU makes: before they join their bridge.
   */
  nicsPlanned?(spec: AgentVmSpec, taps: string[]): Promise<void>;
  /** After a VM is removed; `spec` is undefined for a VM that never booted here (its MMDS data may still exist). */
  removed?(id: string, spec: AgentVmSpec | undefined): Promise<void>;
}

/**
 * A first boot from another disk than the base image: with `state`, it restores saved state (snapshot
 * instantiate); without, it cold-boots a copy of `disk` with this VM's identity injected (clone of a stopped VM).
 */
export interface RestoreFrom {
  disk: string;
  state?: string;
  /** Runs with the TAPs created and the VMM not yet started; times its phases on `clock`. */
  beforeLaunch(taps: string[], clock: PhaseClock): Promise<void>;
  /** Runs with the state loaded and the VM paused; must leave it running. */
  afterLaunch(handle: VmmHandle, driver: VmmDriver, taps: string[], clock: PhaseClock): Promise<void>;
}

export interface BootPhases {
  /** Milliseconds per phase (`total` included); concurrent phases overlap. */
  phases: Record<string, number>;
  /** When the boot finished (epoch ms). */
  finishedAt: number;
}

/** What a VM feature (snapshots) may use of a VM, under the VM's lock. */
export interface VmAccess {
  spec: AgentVmSpec;
  files: VmFiles;
  handle: VmmHandle | null;
  driver: VmmDriver | undefined;
  state: AgentVmStatus['state'];
  setState(state: AgentVmStatus['state']): void;
}

interface VmRecord {
  spec: AgentVmSpec;
  files: VmFiles;
  handle: VmmHandle | null;
  state: AgentVmStatus['state'];
  run: RunInfo;
  /** Set while the agent itself stops or deletes the VM, so the monitor does not report that exit. */
  stopping: boolean;
  /**
   * Its VMM runs but the boot that started it was cut short (the agent crashed): maybe still held (`-S`), its TAPs
   * maybe not bridged, its run info not written. The boot's retry (same operation) finishes it; a delete removes it.
   */
  unfinished?: 'held' | 'started';
}

const fileSize = (p: string) =>
  stat(p).then(
    (s) => s.size,
    () => 0,
  );
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function step<T>(name: BootStep, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AgentError) throw e;
    if (e instanceof RootfsPrepareError) throw Object.assign(new BootFailed('rootfs', e, 422), { prepareStep: e.step });
    if (e instanceof PlanError) throw new BootFailed(name, e, 422);
    if (e instanceof ImageFetchFailed) throw new BootFailed('images', e, 502);
    throw new BootFailed(name, e);
  }
}

/** The VMs of this host: boot, control, inventory, adoption after a restart, and noticing VMMs that die. */

export class VmService {
  private readonly vms = new Map<string, VmRecord>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly availability = new Map<VmmKind, Promise<VmmAvailability>>();
  private readonly checking = new Set<string>();
  /** Each VM's last boot or restore, phase by phase (ms), for the benchmarks. */
  private readonly bootPhases = new Map<string, BootPhases>();
  private readonly runner: CommandRunner;
  private readonly bases: BaseImages;
  private readonly spares: SpareDisks;
  private readonly users: VmmUsers;
  private readonly nics: VmNics;
  private dataDirOpened: Promise<void> | undefined;
  private monitorTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: VmServiceDeps) {
    this.runner = d.runner ?? systemRunner;
    this.bases = new BaseImages(this.runner);
    this.users = new VmmUsers(d.vmmUsers);
    this.nics = new VmNics(d);
    this.spares = new SpareDisks(
      join(d.dataDir, 'spares'),
      (from, to) => copyImage(this.runner, from, to),
      (err, sha256) => d.log.warn({ err, sha256 }, 'could not make a spare disk'),
    );
  }

  private now(): Date {
    return (this.d.now ?? (() => new Date()))();
  }

  /** One operation per VM at a time; later ones queue. */
  private locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    const tail = next.catch(() => undefined);
    this.chains.set(id, tail);
    void tail.then(() => {
      if (this.chains.get(id) === tail) this.chains.delete(id);
    });
    return next;
  }

  private status(r: VmRecord): AgentVmStatus {
    return {
      id: r.spec.vm_id,
      state: r.state,
      pid: r.handle?.pid ?? null,
      booted_at: r.handle ? r.run.booted_at : null,
    };
  }

  list(): AgentVmStatus[] {
    return [...this.vms.values()].map((r) => this.status(r));
  }

  get(id: string): AgentVmStatus {
    const r = this.vms.get(assertVmId(id));
    if (!r) throw new VmNotFound(id);
    return this.status(r);
  }

  guestToken(id: string): string | undefined {
    return this.vms.get(id)?.spec.guest.token;
  }

  /** The VM's last boot or restore by this agent, phase by phase. */
  phasesOf(id: string): BootPhases | undefined {
    return this.bootPhases.get(id);
  }

  /** The spec the VM last booted with (kept in memory; the same as its spec.json). */
  specOf(id: string): AgentVmSpec | undefined {
    return this.vms.get(id)?.spec;
  }

  private async driverFor(kind: VmmKind): Promise<VmmDriver> {
    const driver = this.d.drivers.get(kind);
    if (!driver) throw new VmmNotAvailable(kind, 'no driver configured');
    let a = this.availability.get(kind);
    if (!a) {
      a = driver.availability();
      this.availability.set(kind, a);
    }
    const got = await a;
    if (!got.available) throw new VmmNotAvailable(kind, got.reason ?? 'unavailable');
    return driver;
  }

  /** VMMs pass through the data directory to their own; nobody else may list it (once per agent). */
  private openDataDir(): Promise<void> {
    this.dataDirOpened ??= (async () => {
      const vms = join(this.d.dataDir, 'vms');
      await mkdir(vms, { recursive: true, mode: 0o711 });
      for (const dir of [this.d.dataDir, vms]) await chmod(dir, 0o711);
    })();
    this.dataDirOpened.catch(() => {
      this.dataDirOpened = undefined;
    });
    return this.dataDirOpened;
  }

  /** First call prepares `<data>/vms/<id>/` and its disk; later calls (a cold start) reuse that disk. */
  boot(spec: AgentVmSpec, restore?: RestoreFrom): Promise<AgentVmStatus> {
    const id = assertVmId(spec.vm_id);
    return this.locked(id, async () => {
      const current = this.vms.get(id);
      // A retried boot adopts the VMM its first attempt started: never a second one.
      if (current?.handle && (await isProcessAlive(current.handle.pid))) {
        if (current.unfinished) return this.finishBoot(current, spec, restore);
        return this.status(current);
      }
      const driver = await this.driverFor(spec.vmm);
      const f = vmFiles(this.d.dataDir, id);
      const fresh = !(await exists(f.spec));
      const clock = phaseClock();
      let taps: string[] = [];
      let settled = () => {};
      const bootSettled = new Promise<void>((resolve) => {
        settled = resolve;
      });
      // The VMM runs as a user of its own, which owns the VM's TAPs (so it needs no privilege to open them).
      const user = await this.users.of(id, f);
      // A QEMU cold boot gets bare TAPs: they are guarded and bridged while the guest kernel starts, so no `nft`
      // run delays the VMM. Restores (whose guest runs at once) and Firecracker get them bridged first.
      const bridgeLater = spec.vmm === 'qemu' && !restore;
      let diskReady: Promise<unknown> | undefined;
      try {
        // Disk preparation and TAP setup touch nothing in common, so they run side by side.
        const [disk, net] = await Promise.allSettled([
          this.openDataDir().then(() => this.prepareDisk(spec, f, fresh, clock, bootSettled, restore)),
          clock.time('network', () =>
            step('network', () => (bridgeLater ? this.nics.make(spec, user) : this.nics.plug(spec, 'new', user))),
          ),
        ]);
        if (net.status === 'fulfilled') taps = net.value;
        if (disk.status === 'rejected') throw disk.reason;
        if (net.status === 'rejected') throw net.reason;
        const [kernel, initrd, tools] = disk.value.paths;
        // The VMM initialises while the rootfs is edited, its vCPUs held until the disk (and the spec that makes
        // the VM known to a restarted agent) is written; a driver that cannot hold starts after both.
        const hold = driver.canHold && !restore;
        diskReady = disk.value.rootfs.then(() => writeSpec(f, spec));
        if (!hold) await diskReady;
        diskReady.catch(() => undefined);
        const prepared = clock.elapsed();
        const run: RunInfo = {
          booted_at: null,
          should_run: true,
          console_offset: await fileSize(f.consoleLog),
          vmm_log_offset: await fileSize(f.vmmLog),
        };
        const launch = withDevices(
          launchSpec(spec, { kernel, ...(initrd ? { initrd } : {}), rootfs: f.rootfs, tools, taps }),
          spec,
          f.dir,
        );
        if (restore?.state && fresh) {
          launch.incoming_state_path = restore.state;
          await step('network', () => restore.beforeLaunch(taps, clock));
        }
        const held = diskReady;
        await this.users.record(f, user);
        const handle = await clock.time('launch', () =>
          step('launch', () => driver.launch(launch, f, { user, ...(hold ? { holdUntil: held } : {}) })),
        );
        if (restore?.state && fresh)
          await restore.afterLaunch(handle, driver, taps, clock).catch(async (e) => {
            await driver.kill(handle);
            throw e;
          });
        if (bridgeLater && spec.nics.length)
          await clock
            .time('network', () => step('network', () => this.nics.plug(spec, 'made', user)))
            .catch(async (e) => {
              await driver.kill(handle);
              throw e;
            });
        run.booted_at = this.now().toISOString();
        await writeRun(f, run);
        const rec: VmRecord = { spec, files: f, handle, state: 'running', run, stopping: false };
        this.vms.set(id, rec);
        const phases = clock.phases();
        this.bootPhases.set(id, { phases, finishedAt: Date.now() });
        this.d.log.info({ vm_id: id, pid: handle.pid, fresh, prepare_ms: prepared, phases_ms: phases }, 'vm booted');
        return this.status(rec);
      } catch (e) {
        // A failed launch may leave the rootfs edit running: it ends before the directory goes.
        await diskReady?.catch(() => undefined);
        await this.nics.unplug(id, spec.nics.length).catch(() => undefined);
        if (fresh) {
          await rm(f.dir, { recursive: true, force: true });
          this.users.free(id);
        } else if (!current) this.vms.set(id, this.stoppedRecord(spec, f));
        throw e;
      } finally {
        settled();
      }
    });
  }

  /**
   * Finishes a boot a crash cut short, for the operation that retries it: a QEMU's TAPs are guarded and bridged (again:
   * idempotent), a held VMM continues, the run info is written. A restore cut short cannot be finished (its guest never
   * got its new identity): its VMM and directory go and the caller is asked to try again (503), which starts over.
   */
  private async finishBoot(rec: VmRecord, spec: AgentVmSpec, restore?: RestoreFrom): Promise<AgentVmStatus> {
    const id = rec.spec.vm_id;
    const driver = await this.driverFor(rec.spec.vmm);
    const handle = rec.handle!;
    if (restore) {
      rec.stopping = true;
      await driver.kill(handle);
      await this.nics.unplug(id, rec.spec.nics.length).catch(() => undefined);
      await rm(rec.files.dir, { recursive: true, force: true });
      this.vms.delete(id);
      this.users.free(id);
      this.d.log.warn({ vm_id: id, operation_id: spec.operation_id }, 'restore cut short by a restart: starting over');
      throw new AgentError(503, 'boot_interrupted', 'the restore was cut short by an agent restart; retry it');
    }
    if (rec.spec.vmm === 'qemu' && rec.spec.nics.length) {
      const user = await this.users.of(id, rec.files);
      await step('network', () => this.nics.plug(rec.spec, 'made', user)).catch(async (e) => {
        await driver.kill(handle);
        throw e;
      });
    }
    if (rec.unfinished === 'held') await driver.resume(handle);
    rec.run = { ...rec.run, booted_at: this.now().toISOString(), should_run: true };
    await writeRun(rec.files, rec.run);
    rec.state = 'running';
    rec.unfinished = undefined;
    this.d.log.info({ vm_id: id, pid: handle.pid, operation_id: spec.operation_id }, 'boot finished after a restart');
    return this.status(rec);
  }

  /**
   * Images (fetched or cached), the VM's own disk (first boot only) and extra drives; returns the boot paths and
   * the edit of the VM's rootfs, still running (the VMM may start meanwhile).
   */
  private async prepareDisk(
    spec: AgentVmSpec,
    f: VmFiles,
    fresh: boolean,
    clock: PhaseClock,
    bootSettled: Promise<void>,
    restore?: RestoreFrom,
  ): Promise<{ paths: [string, string | undefined, string | undefined]; rootfs: Promise<unknown> }> {
    const [kernel, initrd, tools, base] = await clock.time('images', () =>
      Promise.all([
        step('images', () => this.d.images.ensure(spec.kernel)),
        spec.initrd ? step('images', () => this.d.images.ensure(spec.initrd!)) : undefined,
        spec.guest.install_agent ? step('guest-tools', () => this.d.guestTools.image()) : undefined,
        fresh && !restore ? step('images', () => this.d.images.ensure(spec.rootfs)) : undefined,
      ]),
    );
    if (fresh) {
      await mkdir(f.dir, { recursive: true, mode: 0o700 });
      const source = restore ? restore.disk : base;
      if (!source) throw new BootFailed('images', new Error('no rootfs image to copy'));
      await clock.time('disk', () =>
        step('disk', async () => {
          if (restore) await copyImage(this.runner, source, f.rootfs);
          else await this.spares.provide(spec.rootfs.sha256, source, f.rootfs, bootSettled);
        }),
      );
    }
    await clock.time('devices', () =>
      step('disk', () => prepareDevices({ runner: this.runner, image: (ref) => this.d.images.ensure(ref) }, f, spec)),
    );
    const rootfs =
      fresh && !restore?.state
        ? clock.time('rootfs', () =>
            step('rootfs', () =>
              prepareRootfs(
                // A clone's disk is another VM's, not the base: its reads must not come from the base's memo.
                restore ? new Ext4Image(f.rootfs, this.runner) : this.bases.copyOf(spec.rootfs.sha256, base!, f.rootfs),
                this.rootfsPlan(spec),
              ),
            ),
          )
        : Promise.resolve();
    // Its failure is the caller's to handle, maybe only after other work settles: never an unhandled rejection.
    rootfs.catch(() => undefined);
    return { paths: [kernel, initrd, tools], rootfs };
  }

  private stoppedRecord(spec: AgentVmSpec, files: VmFiles): VmRecord {
    return {
      spec,
      files,
      handle: null,
      state: 'stopped',
      run: { booted_at: null, should_run: false, console_offset: 0, vmm_log_offset: 0 },
      stopping: false,
    };
  }

  private rootfsPlan(spec: AgentVmSpec) {
    const nic = spec.nics[0];
    const g = spec.guest;
    return {
      hostname: g.hostname,
      ...(nic ? { network: { address: nic.ip, gateway: nic.gateway, mac: nic.mac } } : {}),
      ...(g.username
        ? {
            user: {
              username: g.username,
              ...(g.password !== undefined ? { password: g.password } : {}),
              ...(g.ssh_authorized_keys ? { ssh_authorized_keys: g.ssh_authorized_keys } : {}),
            },
          }
        : {}),
      // Debian's busybox-static: the init of a VM whose image (an OCI image) has none.
      ...(spec.service ? { service: { spec: spec.service, busybox: '/bin/busybox' } } : {}),
      ...(g.install_agent && nic
        ? {
            guestAgent: {
              mode: 'tools-drive' as const,
              config: {
                vm_id: spec.vm_id,
                token: g.token,
                host_url: `http://${nic.gateway}:${this.d.guestPort}`,
                port: 9000,
              },
            },
          }
        : {}),
    };
  }

  /** Runs `fn` with the VM's parts under its lock (no other operation on it meanwhile). */
  withVm<T>(id: string, fn: (vm: VmAccess) => Promise<T>): Promise<T> {
    return this.locked(assertVmId(id), async () => {
      const rec = this.vms.get(id);
      if (!rec) throw new VmNotFound(id);
      return fn({
        spec: rec.spec,
        files: rec.files,
        handle: rec.handle,
        driver: this.d.drivers.get(rec.spec.vmm),
        state: rec.state,
        setState: (state) => {
          rec.state = state;
        },
      });
    });
  }

  private running(id: string, action: string): { rec: VmRecord; handle: VmmHandle; driver: VmmDriver } {
    const rec = this.vms.get(assertVmId(id));
    if (!rec) throw new VmNotFound(id);
    const driver = this.d.drivers.get(rec.spec.vmm);
    if (!rec.handle || !driver) throw new VmNotRunning(id, action);
    return { rec, handle: rec.handle, driver };
  }

  /** Runs a live device change on a running VM under its lock; `save` keeps the changed spec for adoption. */
  live<T>(
    id: string,
    fn: (vm: {
      spec: AgentVmSpec;
      handle: VmmHandle;
      taps: string[];
      network: HostNetwork;
      save(spec: AgentVmSpec): Promise<void>;
    }) => Promise<T>,
  ): Promise<T> {
    return this.locked(assertVmId(id), async () => {
      const { rec, handle } = this.running(id, 'change devices');
      const save = async (spec: AgentVmSpec) => {
        rec.spec = spec;
        await writeSpec(rec.files, spec);
      };
      const taps = rec.spec.nics.map((_, i) => tapNameFor(id, i));
      return fn({ spec: rec.spec, handle, taps, network: this.d.network, save });
    });
  }

  /** ACPI power-down, the VMM killed after `timeoutS`; `force` kills it at once (SIGKILL), as pulling the plug. */
  stop(id: string, timeoutS: number, force = false): Promise<AgentVmStatus> {
    return this.locked(assertVmId(id), async () => {
      const rec = this.vms.get(id);
      if (!rec) throw new VmNotFound(id);
      if (rec.handle) {
        const driver = this.d.drivers.get(rec.spec.vmm)!;
        rec.stopping = true;
        try {
          if (force) await driver.kill(rec.handle);
          else {
            // A paused guest cannot see the ACPI power button.
            if (rec.state === 'paused') await driver.resume(rec.handle).catch(() => undefined);
            await driver.stop(rec.handle, { timeoutMs: Math.max(1, timeoutS) * 1000 });
          }
        } finally {
          rec.stopping = false;
        }
        await this.markStopped(rec);
      }
      return this.status(rec);
    });
  }

  private async markStopped(rec: VmRecord): Promise<void> {
    rec.handle = null;
    rec.state = 'stopped';
    rec.run = { ...rec.run, should_run: false };
    await writeRun(rec.files, rec.run).catch(() => undefined);
    await this.d.drivers
      .get(rec.spec.vmm)
      ?.release(rec.spec.vm_id)
      .catch((err) => this.d.log.warn({ err, vm_id: rec.spec.vm_id }, 'could not release the VMM cgroup'));
    await this.nics
      .unplug(rec.spec.vm_id, rec.spec.nics.length)
      .catch((err) => this.d.log.warn({ err, vm_id: rec.spec.vm_id }, 'could not remove TAPs'));
  }

  action(id: string, action: 'pause' | 'resume' | 'ctrl-alt-del'): Promise<AgentVmStatus> {
    return this.locked(assertVmId(id), async () => {
      const { rec, handle, driver } = this.running(id, action);
      if (action === 'pause') {
        await driver.pause(handle);
        rec.state = 'paused';
      } else if (action === 'resume') {
        await driver.resume(handle);
        rec.state = 'running';
      } else {
        await driver.ctrlAltDel(handle);
      }
      return this.status(rec);
    });
  }

  /** Kills the VMM, removes its TAPs and the whole VM directory; nothing left is not an error. */
  remove(id: string): Promise<void> {
    return this.locked(assertVmId(id), async () => {
      const f = vmFiles(this.d.dataDir, id);
      const rec = this.vms.get(id);
      const spec = rec?.spec ?? (await readSpec(f));
      if (rec?.handle) {
        rec.stopping = true;
        await this.d.drivers.get(rec.spec.vmm)?.kill(rec.handle);
      }
      if (spec) await this.d.drivers.get(spec.vmm)?.release(id);
      await this.nics.unplug(id, spec?.nics.length ?? 1);
      await rm(f.dir, { recursive: true, force: true });
      this.vms.delete(id);
      this.bootPhases.delete(id);
      this.users.free(id);
      await this.d.hooks?.removed?.(id, spec).catch((err) => this.d.log.warn({ err, vm_id: id }, 'remove hook'));
    });
  }

  /** Re-adopts every VM directory: running VMMs are kept as they are, dead ones reported and cleaned. */
  async restore(): Promise<void> {
    const root = join(this.d.dataDir, 'vms');
    const entries = await readdir(root).catch(() => [] as string[]);
    await Promise.all(
      entries.map(async (id) => {
        let f: VmFiles;
        try {
          f = vmFiles(this.d.dataDir, id);
        } catch {
          return;
        }
        const spec = await readSpec(f);
        // A first boot that crashed before its spec was written left a half-prepared disk, and maybe a VMM still
        // holding its vCPUs for it: neither ever ran a guest.
        if (!spec) {
          for (const driver of this.d.drivers.values()) {
            const held = await driver.adopt(id, f).catch(() => null);
            if (held) await driver.kill(held);
          }
          return rm(f.dir, { recursive: true, force: true });
        }
        const run = await readRun(f);
        await this.users.adopt(id, f);
        const driver = this.d.drivers.get(spec.vmm);
        let handle = driver ? await driver.adopt(id, f).catch(() => null) : null;
        // A live VMM whose control socket answers slowly (a loaded host) is retried, never declared dead.
        for (let i = 0; driver && !handle && i < 3 && (await this.pidAlive(f)); i++)
          handle = await driver.adopt(id, f).catch(() => null);
        const rec: VmRecord = { spec, files: f, handle, state: 'stopped', run, stopping: false };
        this.vms.set(id, rec);
        if (handle && driver) {
          const vmm = await driver.state(handle).catch(() => 'running' as const);
          rec.state = vmm === 'paused' || vmm === 'held' ? 'paused' : 'running';
          if (vmm === 'paused' && (await resumeCutSave(driver, handle, f, this.d.log))) rec.state = 'running';
          // Held, or running without the run info its boot writes last: that boot never finished.
          if (vmm === 'held') rec.unfinished = 'held';
          else if (!run.should_run) rec.unfinished = 'started';
          for (const nic of spec.nics) await this.d.guestEndpoint(nic.gateway).catch(() => undefined);
          this.d.log.info({ vm_id: id, pid: handle.pid }, 'vm adopted');
        } else if (run.should_run) {
          await this.died(rec);
        } else await driver?.release(id).catch(() => undefined);
      }),
    );
  }

  private async pidAlive(f: VmFiles): Promise<boolean> {
    const pid = Number.parseInt(await readFile(f.pidFile, 'utf8').catch(() => ''), 10);
    return Number.isInteger(pid) && pid > 1 && (await isProcessAlive(pid));
  }

  private async died(rec: VmRecord): Promise<void> {
    const f = rec.files;
    const reason = await exitReason(f.consoleLog, rec.run.console_offset, f.vmmLog, rec.run.vmm_log_offset);
    this.d.log.warn({ vm_id: rec.spec.vm_id, ...reason }, 'vmm exited on its own');
    await this.markStopped(rec);
    const report: VmExitReport = { vm_id: rec.spec.vm_id, ...reason, at: this.now().toISOString() };
    void this.sendExit(report);
  }

  private async sendExit(report: VmExitReport): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        return await this.d.reportExit(report);
      } catch (err) {
        this.d.log.warn({ err, vm_id: report.vm_id, attempt }, 'reporting a VMM exit failed');
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
      }
    }
  }

  /** Checks every VMM pid once a second; one that vanished without being asked is reported. */
  startMonitor(intervalMs = 1000): void {
    this.monitorTimer = setInterval(() => {
      for (const rec of this.vms.values()) {
        const h = rec.handle;
        const id = rec.spec.vm_id;
        if (!h || rec.stopping || this.checking.has(id)) continue;
        this.checking.add(id);
        void isProcessAlive(h.pid)
          .then((alive) =>
            alive
              ? undefined
              : this.locked(id, async () => {
                  if (rec.handle === h && !rec.stopping && this.vms.get(id) === rec) await this.died(rec);
                }),
          )
          .catch((err) => this.d.log.error({ err, vm_id: id }, 'monitor check failed'))
          .finally(() => this.checking.delete(id));
      }
    }, intervalMs);
    this.monitorTimer.unref();
  }

  stopMonitor(): void {
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    this.monitorTimer = undefined;
  }

  /** Waits for background work (spare disks being made), so the data directory is quiet. */
  settle(): Promise<void> {
    return this.spares.idle();
  }
}
