import { mkdir, rm, writeFile } from 'node:fs/promises';
import type { AgentSnapshotCreate, AgentSnapshotInfo, AgentVmSpec, AgentVmStatus } from '@nqvm/api';
import type { Logger } from 'pino';
import type { CommandRunner } from '../host/exec.ts';
import { copyImage } from '../rootfs/index.ts';
import { guestRamPath } from '../vmm/qemu/args.ts';
import { QemuDriver } from '../vmm/qemu/index.ts';
import { AgentError, VmNotRunning } from '../vms/errors.ts';
import { vmFiles } from '../vms/layout.ts';
import type { VmService } from '../vms/vms.service.ts';
import { isolateTap, reidentify, requestReport, type TapIsolation } from './identity.ts';
import { materialize, type RamLayer, writeDiffLayer, writeFullLayer } from './ram-layers.ts';
import {
  allocatedBytes,
  childrenOf,
  ramChain,
  readSnapshotMeta,
  readSnapshotSpec,
  type SnapshotFiles,
  snapshotFiles,
  writeSnapshotMeta,
  writeSnapshotSpec,
} from './snapshot-files.ts';

export interface SnapshotServiceDeps {
  dataDir: string;
  vms: VmService;
  runner: CommandRunner;
  log: Logger;
  /** How long an instance's guest agent has to take its new identity. */
  identityTimeoutMs?: number;
  /** Keeps an instance's TAP from reaching the host until it has its own identity and token. */
  isolation?: TapIsolation;
}

/** Snapshots of this host's VMs (QEMU: device state by migration, RAM layers, a disk copy) and their instances. */
export class SnapshotService {
  /** Snapshots an instance is being restored from right now: their files must stay. */
  private readonly inUse = new Map<string, number>();

  constructor(private readonly d: SnapshotServiceDeps) {}

  /** Restores holding one of these old guest addresses, in turn (first come, first served). */
  private readonly restoring = new Map<string, Promise<void>>();

  private async oneAtATime<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const before = keys.map((k) => this.restoring.get(k));
    let release = () => {};
    const mine = new Promise<void>((r) => {
      release = r;
    });
    const tail = Promise.allSettled(before).then(() => mine);
    for (const k of keys) this.restoring.set(k, tail);
    try {
      await Promise.allSettled(before);
      return await fn();
    } finally {
      release();
      for (const k of keys) if (this.restoring.get(k) === tail) this.restoring.delete(k);
    }
  }

  /**
   * Pauses the VM, saves its device state, then (still paused) its RAM as a full layer or, for a Diff, the pages
   * that differ from `parentId`'s chain, and a sparse copy of its disk; resumes it if it was running.
   */
  create(vmId: string, snapshotId: string, req: AgentSnapshotCreate): Promise<AgentSnapshotInfo> {
    const f = snapshotFiles(this.d.dataDir, snapshotId);
    const type = req.snapshot_type;
    return this.d.vms.withVm(vmId, async (vm) => {
      // Asked again for the same snapshot (the manager's operation resumed after a crash): a save that completed
      // answers from its files; one cut short is started again from nothing, never left half written.
      const saved = await this.savedBefore(vmId, f);
      if (saved) return saved;
      await rm(f.dir, { recursive: true, force: true });
      if (!(vm.driver instanceof QemuDriver))
        throw new AgentError(422, 'unsupported_on_host', `snapshots of ${vm.spec.vmm} VMs are not supported here`);
      if (!vm.handle || (vm.state !== 'running' && vm.state !== 'paused')) throw new VmNotRunning(vmId, 'snapshot');
      const parent = type === 'Diff' ? await this.diffParent(vmId, req.parent_id) : null;
      const wasRunning = vm.state === 'running';
      await mkdir(f.dir, { recursive: true, mode: 0o700 });
      const t0 = Date.now();
      let saveMs = 0;
      if (wasRunning) await writeFile(vm.files.pausedForSave, '', { mode: 0o600 });
      try {
        await vm.driver.saveState(vm.handle, f.state);
        // The guest is frozen: its RAM, its disk and the page cache in that RAM belong to the same instant.
        const ram = guestRamPath(vm.files);
        if (parent) await writeDiffLayer(ram, parent.chain, { data: f.ram, map: f.ramMap });
        else await writeFullLayer(ram, f.ram);
        saveMs = Date.now() - t0;
        await copyImage(this.d.runner, vm.files.rootfs, f.disk);
        await writeSnapshotSpec(f, vm.spec);
        await writeSnapshotMeta(f, { snapshot_type: type, parent_id: parent?.id ?? null });
      } catch (e) {
        await rm(f.dir, { recursive: true, force: true });
        throw e;
      } finally {
        if (wasRunning) await vm.driver.resume(vm.handle);
        await rm(vm.files.pausedForSave, { force: true });
        vm.setState(wasRunning ? 'running' : 'paused');
      }
      const info = { ...(await sizesOf(f)), save_ms: saveMs, paused_ms: Date.now() - t0 };
      this.d.log.info({ vm_id: vmId, snapshot_id: snapshotId, type, parent_id: parent?.id, ...info }, 'snapshot saved');
      return info;
    });
  }

  /** The sizes of a complete save of this VM under that id (its metadata is written last), else undefined. */
  private async savedBefore(vmId: string, f: SnapshotFiles): Promise<AgentSnapshotInfo | undefined> {
    const meta = await readSnapshotMeta(f).catch(() => undefined);
    const spec = meta && (await readSnapshotSpec(f).catch(() => undefined));
    if (spec?.vm_id !== vmId) return undefined;
    return { ...(await sizesOf(f)), save_ms: 0, paused_ms: 0 };
  }

  /** A Diff's parent must be a snapshot of the same VM in this agent's store. */
  private async diffParent(vmId: string, parentId: string | undefined): Promise<{ id: string; chain: RamLayer[] }> {
    if (!parentId)
      throw new AgentError(422, 'snapshot_parent_required', 'a Diff snapshot needs a parent snapshot of this VM', {
        field: 'body.parent_id',
      });
    const pf = snapshotFiles(this.d.dataDir, parentId);
    const parentSpec = await readSnapshotSpec(pf).catch(() => undefined);
    if (parentSpec?.vm_id !== vmId)
      throw new AgentError(
        422,
        'snapshot_parent_invalid',
        `snapshot ${parentId} is not a snapshot of VM ${vmId} here`,
        {
          field: 'body.parent_id',
        },
      );
    return { id: parentId, chain: await ramChain(this.d.dataDir, parentId) };
  }

  async remove(snapshotId: string): Promise<void> {
    const f = snapshotFiles(this.d.dataDir, snapshotId);
    if (this.inUse.get(snapshotId))
      throw new AgentError(409, 'snapshot_in_use', `an instance is being restored from snapshot ${snapshotId}`);
    const children = await childrenOf(this.d.dataDir, snapshotId);
    if (children.length)
      throw new AgentError(409, 'has_dependents', `Diff snapshots build on ${snapshotId}: ${children.join(', ')}`);
    await rm(f.dir, { recursive: true, force: true });
  }

  /**
   * Boots `spec` as a new VM from a copy of a stopped VM's disk, its own identity injected as on any first boot;
   * the source stays locked (cannot start) until the copy is taken.
   */
  cloneStopped(sourceVmId: string, spec: AgentVmSpec): Promise<AgentVmStatus> {
    return this.d.vms.withVm(sourceVmId, async (src) => {
      if (src.state !== 'stopped')
        throw new AgentError(409, 'vm_not_stopped', `VM ${sourceVmId} is ${src.state}; clone a running VM by snapshot`);
      if (src.spec.vmm !== spec.vmm)
        throw new AgentError(422, 'clone_mismatch', `vmm must equal the source's (${src.spec.vmm})`, {
          field: 'body.spec.vmm',
        });
      const none = async () => undefined;
      return this.d.vms.boot(spec, { disk: src.files.rootfs, beforeLaunch: none, afterLaunch: none });
    });
  }

  /** Boots `spec` as a new VM from the snapshot: its own disk copy, the saved state, then a new identity. */
  async instantiate(snapshotId: string, spec: AgentVmSpec): Promise<AgentVmStatus> {
    const f = snapshotFiles(this.d.dataDir, snapshotId);
    const source = await readSnapshotSpec(f);
    for (const k of ['vmm', 'vcpu', 'mem_mib', 'smt', 'cpu_template'] as const)
      if (source[k] !== spec[k])
        throw new AgentError(422, 'snapshot_mismatch', `${k} must equal the snapshot's (${String(source[k])})`, {
          field: `body.spec.${k}`,
        });
    if (source.kernel.sha256 !== spec.kernel.sha256 || source.nics.length !== spec.nics.length)
      throw new AgentError(422, 'snapshot_mismatch', "the kernel and NIC count must equal the snapshot's");
    const chain = await ramChain(this.d.dataDir, snapshotId);
    const ram = guestRamPath(vmFiles(this.d.dataDir, spec.vm_id));
    this.inUse.set(snapshotId, (this.inUse.get(snapshotId) ?? 0) + 1);
    try {
      // Instances of one snapshot share its old addresses until each took its own: one at a time (a second
      // one's host route to the old address would take the first's identity push to the wrong TAP).
      const oldIps = source.nics.map((n) => n.ip.split('/')[0] ?? n.ip);
      const status = await this.oneAtATime(oldIps, () =>
        this.d.vms.boot(spec, {
          disk: f.disk,
          state: f.state,
          beforeLaunch: async (taps, clock) => {
            // The instance's own RAM file (share=on writes back to it), rebuilt from the snapshot's layers.
            await clock.time('ram', () => materialize(chain, ram, (src, dst) => copyImage(this.d.runner, src, dst)));
            await clock.time('isolate', async () => {
              for (const [i, tap] of taps.entries()) {
                const old = source.nics[i]!;
                await isolateTap(this.d.runner, tap, old.ip.split('/')[0]!, old.gateway, this.d.isolation);
              }
            });
          },
          afterLaunch: async (handle, driver, taps, clock) => {
            await clock.time('resume', () => driver.resume(handle));
            const old = source.nics[0];
            const nic = spec.nics[0];
            const tap = taps[0];
            if (!old || !nic || !tap) return;
            if (!source.guest.install_agent)
              throw new AgentError(
                422,
                'snapshot_without_agent',
                'an instance needs the guest agent to change its address',
              );
            await reidentify(
              {
                runner: this.d.runner,
                clock,
                ...(this.d.identityTimeoutMs ? { timeoutMs: this.d.identityTimeoutMs } : {}),
                ...(this.d.isolation ? { isolation: this.d.isolation } : {}),
              },
              {
                tap,
                bridge: nic.bridge,
                oldIp: old.ip.split('/')[0]!,
                gateway: old.gateway,
                oldToken: source.guest.token,
              },
              {
                vm_id: spec.vm_id,
                token: spec.guest.token,
                hostname: spec.guest.hostname,
                ip: nic.ip,
                gateway: nic.gateway,
                mac: nic.mac,
              },
            );
          },
        }),
      );
      // Registered now, so the guest endpoint takes its report: ask for it instead of waiting for its retry.
      const ip = spec.nics[0]?.ip.split('/')[0];
      if (ip && source.guest.install_agent && !(await requestReport(ip, spec.guest.token)))
        this.d.log.debug({ vm_id: spec.vm_id }, 'the instance did not take the request to report now');
      return status;
    } finally {
      const n = (this.inUse.get(snapshotId) ?? 1) - 1;
      if (n > 0) this.inUse.set(snapshotId, n);
      else this.inUse.delete(snapshotId);
    }
  }
}

async function sizesOf(f: SnapshotFiles): Promise<{ state_bytes: number; disk_bytes: number }> {
  return {
    state_bytes: (await allocatedBytes(f.state)) + (await allocatedBytes(f.ram)) + (await allocatedBytes(f.ramMap)),
    disk_bytes: await allocatedBytes(f.disk),
  };
}
