import { mkdir, rm } from 'node:fs/promises';
import type { AgentSnapshotInfo, AgentVmSpec, AgentVmStatus, SnapshotType } from '@nqvm/api';
import type { Logger } from 'pino';
import type { CommandRunner } from '../host/exec.ts';
import { copyImage } from '../rootfs/index.ts';
import { QemuDriver } from '../vmm/qemu/index.ts';
import { AgentError, VmNotRunning } from '../vms/errors.ts';
import type { VmService } from '../vms/vms.service.ts';
import { isolateTap, reidentify } from './identity.ts';
import { allocatedBytes, readSnapshotSpec, snapshotFiles, writeSnapshotSpec } from './snapshot-files.ts';

export interface SnapshotServiceDeps {
  dataDir: string;
  vms: VmService;
  runner: CommandRunner;
  log: Logger;
  /** How long an instance's guest agent has to take its new identity. */
  identityTimeoutMs?: number;
}

/** Snapshots of this host's VMs (QEMU: migrate to a file + a copy of the disk) and VMs restored from them. */
export class SnapshotService {
  /** Snapshots an instance is being restored from right now: their files must stay. */
  private readonly inUse = new Map<string, number>();

  constructor(private readonly d: SnapshotServiceDeps) {}

  create(vmId: string, snapshotId: string, type: SnapshotType): Promise<AgentSnapshotInfo> {
    const f = snapshotFiles(this.d.dataDir, snapshotId);
    return this.d.vms.withVm(vmId, async (vm) => {
      if (type === 'Diff')
        throw new AgentError(
          422,
          'unsupported_on_host',
          'Diff snapshots need guest RAM in a shared memory-backend-file, which this agent does not launch VMs with; take a Full snapshot',
          { field: 'body.snapshot_type' },
        );
      if (!(vm.driver instanceof QemuDriver))
        throw new AgentError(422, 'unsupported_on_host', `snapshots of ${vm.spec.vmm} VMs are not supported here`);
      if (!vm.handle || (vm.state !== 'running' && vm.state !== 'paused')) throw new VmNotRunning(vmId, 'snapshot');
      const wasRunning = vm.state === 'running';
      await mkdir(f.dir, { recursive: true, mode: 0o700 });
      const t0 = Date.now();
      let saveMs = 0;
      try {
        await vm.driver.saveState(vm.handle, f.state);
        saveMs = Date.now() - t0;
        // The guest is frozen: its disk and the page cache in the saved RAM belong to the same instant.
        await copyImage(this.d.runner, vm.files.rootfs, f.disk);
        await writeSnapshotSpec(f, vm.spec);
      } catch (e) {
        await rm(f.dir, { recursive: true, force: true });
        throw e;
      } finally {
        if (wasRunning) await vm.driver.resume(vm.handle);
        vm.setState(wasRunning ? 'running' : 'paused');
      }
      const pausedMs = Date.now() - t0;
      const info = {
        state_bytes: await allocatedBytes(f.state),
        disk_bytes: await allocatedBytes(f.disk),
        save_ms: saveMs,
        paused_ms: pausedMs,
      };
      this.d.log.info({ vm_id: vmId, snapshot_id: snapshotId, ...info }, 'snapshot saved');
      return info;
    });
  }

  async remove(snapshotId: string): Promise<void> {
    const f = snapshotFiles(this.d.dataDir, snapshotId);
    if (this.inUse.get(snapshotId))
      throw new AgentError(409, 'snapshot_in_use', `an instance is being restored from snapshot ${snapshotId}`);
    await rm(f.dir, { recursive: true, force: true });
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
    this.inUse.set(snapshotId, (this.inUse.get(snapshotId) ?? 0) + 1);
    try {
      return await this.d.vms.boot(spec, {
        disk: f.disk,
        state: f.state,
        beforeLaunch: async (taps) => {
          for (const [i, tap] of taps.entries()) {
            const old = source.nics[i]!;
            await isolateTap(this.d.runner, tap, old.ip.split('/')[0]!, old.gateway);
          }
        },
        afterLaunch: async (handle, driver, taps) => {
          await driver.resume(handle);
          const old = source.nics[0];
          const nic = spec.nics[0];
          if (!old || !nic || !taps[0]) return;
          if (!source.guest.install_agent)
            throw new AgentError(
              422,
              'snapshot_without_agent',
              'an instance needs the guest agent to change its address',
            );
          await reidentify(
            { runner: this.d.runner, ...(this.d.identityTimeoutMs ? { timeoutMs: this.d.identityTimeoutMs } : {}) },
            {
              tap: taps[0],
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
      });
    } finally {
      const n = (this.inUse.get(snapshotId) ?? 1) - 1;
      if (n > 0) this.inUse.set(snapshotId, n);
      else this.inUse.delete(snapshotId);
    }
  }
}
