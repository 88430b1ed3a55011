import {
  agentApi,
  type Balloon,
  type BalloonStats,
  type CpuConfigRequest,
  type Entropy,
  type LoggerConfig,
  type Serial,
  type UpdateMachineConfigRequest,
  type VmConfig,
} from '@nqvm/api';
import type { Static } from 'typebox';
import { Conflict, DomainError, Unprocessable } from '../../domain/errors.ts';
import { STOPPED } from './devices.repository.ts';
import {
  type Changed,
  type DeviceConfig,
  type DevicesDeps,
  type DevicesService,
  LIVE,
  RequiresStop,
  UnsupportedOnHost,
} from './devices.service.ts';

type MachineReq = Static<typeof UpdateMachineConfigRequest>;
type CpuReq = Static<typeof CpuConfigRequest>;
interface MachineView {
  vcpu: number;
  mem_mib: number;
  smt: boolean;
  track_dirty_pages: boolean;
  huge_pages: 'None' | '2M';
}

export class DeviceNotSet extends DomainError {
  constructor(device: string, vmId: string) {
    super(404, 'device_not_set', `VM ${vmId} has no ${device} device to remove`, device);
  }
}

/** Machine and CPU config and the single-instance devices (vsock, entropy, serial, logger, balloon). */
export class DeviceConfigService {
  constructor(
    private readonly d: DevicesDeps,
    private readonly base: DevicesService,
  ) {}

  /** What the PUTs below stored, read back; track_dirty_pages and 2M huge pages are refused, so never set. */
  async getConfig(vmId: string): Promise<VmConfig> {
    const row = await this.d.vms.row(vmId);
    const dev = this.base.config(row);
    return {
      machine: { vcpu: row.vcpu, mem_mib: row.memMib, smt: row.smt, track_dirty_pages: false, huge_pages: 'None' },
      cpu: { template: row.cpuTemplate },
      vsock: dev.vsock ?? null,
      entropy: dev.entropy ?? null,
      serial: dev.serial ?? null,
      logger: dev.logger ?? null,
      balloon: dev.balloon ?? null,
    };
  }

  async machineConfig(vmId: string, req: MachineReq, actor: string): Promise<Changed<MachineView>> {
    // Refused rather than stored: nothing on a QEMU host would honour them.
    if (req.track_dirty_pages)
      throw new UnsupportedOnHost(
        'dirty page tracking is a Firecracker feature; QEMU VMs cannot use it',
        'body.track_dirty_pages',
      );
    if (req.huge_pages === '2M')
      throw new UnsupportedOnHost('no host reports configured 2 MiB huge pages', 'body.huge_pages');
    const row = await this.base.whileStopped(vmId, 'changing the machine config', 'body', async (tx, cur) => {
      const vcpu = req.vcpu ?? cur.vcpu;
      const smt = req.smt ?? cur.smt;
      const mem = req.mem_mib ?? cur.memMib;
      if (smt && vcpu > 1 && vcpu % 2)
        throw new Unprocessable('smt_odd_vcpu', 'with smt, vcpu must be 1 or even', 'body.vcpu');
      const balloon = this.base.config(cur).balloon;
      if (balloon && balloon.amount_mib >= mem)
        throw new Unprocessable('balloon_too_large', 'the balloon would take all the memory', 'body.mem_mib');
      return this.d.repo.setMachine(tx, vmId, { vcpu, memMib: mem, smt });
    });
    await this.base.record(actor, vmId, 'machine_config', { ...req });
    return {
      item: { vcpu: row.vcpu, mem_mib: row.memMib, smt: row.smt, track_dirty_pages: false, huge_pages: 'None' },
      applied: 'next_boot',
    };
  }

  async cpuConfig(vmId: string, req: CpuReq, actor: string): Promise<Changed<{ template: CpuReq['template'] }>> {
    for (const f of ['cpuid_modifiers', 'msr_modifiers'] as const)
      if (req[f]?.length)
        throw new UnsupportedOnHost('custom CPU modifiers have no QEMU -cpu mapping here; use a template', `body.${f}`);
    await this.base.whileStopped(vmId, 'changing the CPU template', 'body.template', (tx) =>
      this.d.repo.setMachine(tx, vmId, { cpuTemplate: req.template }),
    );
    await this.base.record(actor, vmId, 'cpu_config', { template: req.template });
    return { item: { template: req.template }, applied: 'next_boot' };
  }

  async vsock(vmId: string, req: { guest_cid: number; uds_path?: string }, actor: string) {
    const row = await this.d.vms.row(vmId);
    const host = row.hostId ? (await this.d.hosts.rows()).find((h) => h.id === row.hostId) : undefined;
    const caps = host ? this.d.hosts.toHost(host, undefined).capabilities : null;
    if (!caps?.vsock)
      throw new UnsupportedOnHost("the VM's host has no /dev/vhost-vsock (modprobe vhost_vsock)", 'body.guest_cid');
    if (req.uds_path !== undefined)
      throw new UnsupportedOnHost('QEMU vhost-vsock is reached with AF_VSOCK, not a Unix socket', 'body.uds_path');
    const r = await this.base.setDevice(vmId, 'vsock', { guest_cid: req.guest_cid }, actor, 'body');
    return { item: { guest_cid: r.item.guest_cid }, applied: r.applied };
  }

  async entropy(vmId: string, req: Entropy, actor: string) {
    const rl = req.rate_limiter;
    // virtio-rng's limit is a quota per period (max-bytes/period), not a token bucket with extras.
    if (rl?.ops) throw new UnsupportedOnHost('virtio-rng limits bytes only', 'body.rate_limiter.ops');
    if (rl?.bandwidth?.one_time_burst)
      throw new UnsupportedOnHost('virtio-rng has no one-time burst', 'body.rate_limiter.bandwidth.one_time_burst');
    return this.base.setDevice(vmId, 'entropy', req, actor, 'body');
  }

  async serial(vmId: string, req: Serial, actor: string) {
    if (['console.log', 'vmm.log'].includes(req.serial_out_path))
      throw new Unprocessable('reserved_name', `${req.serial_out_path} is reserved`, 'body.serial_out_path');
    return this.base.setDevice(vmId, 'serial', req, actor, 'body.serial_out_path');
  }

  async logger(vmId: string, req: LoggerConfig, actor: string): Promise<Changed<LoggerConfig>> {
    // QEMU always writes its warnings and errors to the VMM log; Info adds guest error and unimplemented-device logs.
    if (req.level !== 'Warning' && req.level !== 'Info')
      throw new UnsupportedOnHost(`QEMU cannot log at level ${req.level}; use Warning or Info`, 'body.level');
    if (req.show_level || req.show_log_origin)
      throw new UnsupportedOnHost(
        'QEMU log lines carry timestamps only',
        req.show_level ? 'body.show_level' : 'body.show_log_origin',
      );
    const stored = { level: req.level, ...(req.max_bytes !== undefined ? { max_bytes: req.max_bytes } : {}) };
    const r = await this.base.setDevice(vmId, 'logger', stored, actor, 'body.level');
    return { item: r.item, applied: r.applied };
  }

  async putBalloon(vmId: string, req: Balloon, actor: string) {
    const row = await this.d.vms.row(vmId);
    if (req.amount_mib >= row.memMib)
      throw new Unprocessable('balloon_too_large', 'amount_mib must be below the VM memory', 'body.amount_mib');
    return this.base.setDevice(vmId, 'balloon', req, actor, 'body');
  }

  /** Live on a running VM (QMP), stored for the next boot otherwise. */
  async patchBalloon(
    vmId: string,
    patch: { amount_mib?: number; stats_polling_interval_s?: number },
    actor: string,
  ): Promise<Changed<Balloon>> {
    const row = await this.d.vms.row(vmId);
    const current = this.base.config(row).balloon;
    if (!current) throw new Conflict('balloon_not_configured', 'PUT /balloon on the stopped VM first', 'body');
    if (patch.amount_mib !== undefined && patch.amount_mib >= row.memMib)
      throw new Unprocessable('balloon_too_large', 'amount_mib must be below the VM memory', 'body.amount_mib');
    const next = { ...current, ...patch };
    if (LIVE.includes(row.state))
      return this.base.live(
        vmId,
        actor,
        { device: 'balloon', patch, action: 'balloon_update', detail: { ...patch, applied: 'live' } },
        async () => this.base.config(await this.d.vms.row(vmId)).balloon ?? next,
      );
    if (!STOPPED.includes(row.state)) throw new RequiresStop('changing the balloon', 'body', row.state);
    await this.d.repo.setConfig(undefined, vmId, {
      ...row.config,
      devices: { ...this.base.config(row), balloon: next },
    });
    await this.base.record(actor, vmId, 'balloon_update', { ...patch, applied: 'next_boot' });
    return { item: next, applied: 'next_boot' };
  }

  /** Takes a device off the VM: its next boot's agent spec (built from the stored config) no longer carries it. */
  async removeDevice(vmId: string, device: keyof DeviceConfig, actor: string): Promise<void> {
    const removed = await this.base.whileStopped(vmId, `removing the ${device} device`, device, async (tx, row) => {
      const { [device]: gone, ...rest } = this.base.config(row);
      if (gone === undefined) throw new DeviceNotSet(device, vmId);
      await this.d.repo.setConfig(tx, vmId, { ...row.config, devices: rest });
      return gone;
    });
    await this.base.record(actor, vmId, `${device}_remove`, { [device]: removed });
  }

  async balloonStats(vmId: string): Promise<BalloonStats> {
    const row = await this.d.vms.row(vmId);
    if (!this.base.config(row).balloon) throw new Conflict('balloon_not_configured', 'this VM has no balloon');
    if (!LIVE.includes(row.state)) throw new Conflict('vm_not_running', 'statistics come from a running guest');
    return this.d.agent.call(await this.base.host(row), agentApi.devices.balloonStats, { params: { id: vmId } });
  }
}
