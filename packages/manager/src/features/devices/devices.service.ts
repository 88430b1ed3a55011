import type {
  AgentNic,
  AgentVmSpec,
  Balloon,
  CreateDriveRequest,
  CreateNicRequest,
  Drive,
  Entropy,
  Nic,
  RateLimiter,
  Serial,
} from '@nqvm/api';
import { Conflict, DomainError, NotFound, Unprocessable } from '../../domain/errors.ts';
import type { EventsService } from '../events/events.service.ts';
import type { HostsService } from '../hosts/hosts.service.ts';
import type { OperationWaiter } from '../operations/operations.waiter.ts';
import { claimAddress } from '../vms/address-pool.ts';
import type { AgentClient } from '../vms/agent-client.ts';
import { randomMac } from '../vms/ipam.ts';
import type { VmStateMachine } from '../vms/vm-state-machine.ts';
import { isUniqueViolation, type NicRow, type VmRow, type VmsRepository } from '../vms/vms.repository.ts';
import type { ImageCatalog, VmsService } from '../vms/vms.service.ts';
import type { LiveChange } from './devices.operations.ts';
import { type DevicesRepository, type DriveRow, STOPPED, type Tx } from './devices.repository.ts';

export type Applied = 'live' | 'next_boot';
export interface Changed<T> {
  item: T;
  applied: Applied;
  operation_id?: string;
}

/** Device settings kept in the VM's `config` column, sent to the agent at every boot. */
export interface DeviceConfig {
  balloon?: Balloon;
  entropy?: Entropy;
  serial?: Serial;
  logger?: { level: 'Warning' | 'Info'; max_bytes?: number };
  vsock?: { guest_cid: number };
}

const MAX_NICS = 8;
const MAX_DRIVES = 16;
export const LIVE: readonly string[] = ['running', 'paused'];

export class RequiresStop extends DomainError {
  constructor(what: string, field: string, state: string) {
    super(409, 'requires_stop', `${what} needs the VM stopped (it is ${state}); stop it, change it, start it`, field, {
      state,
    });
  }
}

export class UnsupportedOnHost extends DomainError {
  constructor(message: string, field: string) {
    super(422, 'unsupported_on_host', message, field);
  }
}

const active = (b: { size: number; refill_time: number } | undefined) => !!b && b.size > 0 && b.refill_time > 0;

/** tc on the TAP shapes bytes; this host's kernel has no `police` action for packet rates. */
function checkNicLimiter(rl: RateLimiter | null | undefined, field: string): void {
  if (rl && active(rl.ops))
    throw new UnsupportedOnHost('NIC packet-rate (ops) limits need tc police, which this host lacks', `${field}.ops`);
}

/**
 * eth0 gets the kernel's `ip=` from the agent; every other NIC's address goes on the command line as
 * `nqvm.nic=<mac>,<addr>/<prefix>`, which the guest's init applies to the NIC with that MAC.
 */
export function withNicArgs(bootArgs: string, nics: readonly Pick<AgentNic, 'mac' | 'ip'>[]): string {
  const extra = nics.slice(1).map((n) => `nqvm.nic=${n.mac.toLowerCase()},${n.ip}`);
  return [bootArgs, ...extra].filter((a) => a.trim()).join(' ');
}

export interface DevicesDeps {
  repo: DevicesRepository;
  vmsRepo: VmsRepository;
  vms: VmsService;
  hosts: HostsService;
  events: EventsService;
  images: ImageCatalog;
  /** Live device changes on the VM's host agent. */
  agent: Pick<AgentClient, 'call'>;
  /** Queues a live change as a `device` operation; the answer waits for it. */
  machine: Pick<VmStateMachine, 'queue'>;
  waiter: Pick<OperationWaiter, 'result'>;
}

/** How long a live change's request waits for its operation before answering with it still running. */
const LIVE_ANSWER_MS = 60_000;

/** Drives, NICs, machine and CPU config, and the VM's other devices: stored for the next boot or applied live. */
export class DevicesService {
  constructor(readonly deps: DevicesDeps) {}

  private get d(): DevicesDeps {
    return this.deps;
  }

  /** The VmsService hook: what a VM boots with beyond its base spec. */
  async extendSpec(row: VmRow, spec: AgentVmSpec, ctx: { nics: NicRow[]; isNew: boolean }): Promise<AgentVmSpec> {
    const { nics } = ctx;
    const drives = ctx.isNew ? [] : await this.d.repo.drives(row.id);
    const cfg = this.config(row);
    const out: AgentVmSpec = {
      ...spec,
      nics: spec.nics.map((n) => {
        const c = nics.find((x) => x.ifaceId === n.iface_id)?.config ?? {};
        return {
          ...n,
          ...(c.rx_rate_limiter ? { rx_rate_limiter: c.rx_rate_limiter as RateLimiter } : {}),
          ...(c.tx_rate_limiter ? { tx_rate_limiter: c.tx_rate_limiter as RateLimiter } : {}),
        };
      }),
    };
    out.boot_args = withNicArgs(spec.boot_args, spec.nics);
    if (drives.length) {
      out.drives = [];
      for (const dr of drives) {
        const img = dr.imageId ? await this.d.images.find(dr.imageId) : undefined;
        if (dr.imageId && !img?.sha256)
          throw new Unprocessable('image_not_ready', `image ${dr.imageId} of drive ${dr.driveId} is not available`);
        out.drives.push({
          drive_id: dr.driveId,
          ...(dr.sizeMib ? { size_mib: dr.sizeMib } : {}),
          ...(img?.sha256 ? { image: { image_id: img.id, sha256: img.sha256, size_bytes: img.size_bytes } } : {}),
          is_read_only: dr.isReadOnly,
          cache_type: dr.cacheType,
          io_engine: dr.ioEngine,
          ...(dr.rateLimiter ? { rate_limiter: dr.rateLimiter as RateLimiter } : {}),
        });
      }
    }
    if (cfg.balloon) out.balloon = cfg.balloon;
    if (cfg.entropy) out.entropy = cfg.entropy;
    if (cfg.serial) out.serial = cfg.serial;
    if (cfg.logger) out.logger = cfg.logger;
    if (cfg.vsock) out.vsock = cfg.vsock;
    return out;
  }

  config(row: VmRow): DeviceConfig {
    return ((row.config as { devices?: DeviceConfig }).devices ?? {}) as DeviceConfig;
  }

  async record(actor: string, vmId: string, action: string, detail: Record<string, unknown>) {
    await this.d.events.record({ actor, resourceType: 'vm', resourceId: vmId, action, detail });
  }

  /** Stores a change for the next boot under the VM's row lock, or refuses with requires_stop. */
  async whileStopped<T>(vmId: string, what: string, field: string, fn: (tx: Tx, row: VmRow) => Promise<T>): Promise<T> {
    return this.d.repo.locked(vmId, async (tx, row) => {
      if (!row) throw new NotFound('vm', vmId);
      if (!STOPPED.includes(row.state)) throw new RequiresStop(what, field, row.state);
      return fn(tx, row);
    });
  }

  async setDevice<K extends keyof DeviceConfig>(
    vmId: string,
    key: K,
    value: DeviceConfig[K],
    actor: string,
    field: string,
  ): Promise<Changed<NonNullable<DeviceConfig[K]>>> {
    await this.whileStopped(vmId, `setting ${key}`, field, async (tx, row) => {
      await this.d.repo.setConfig(tx, vmId, { ...row.config, devices: { ...this.config(row), [key]: value } });
    });
    await this.record(actor, vmId, `${key}_set`, { [key]: value });
    return { item: value as NonNullable<DeviceConfig[K]>, applied: 'next_boot' };
  }

  /** A change to the running VM: a durable `device` operation applies it on the host and stores it; answered when done. */
  async live<T>(vmId: string, actor: string, change: LiveChange, view: () => Promise<T>): Promise<Changed<T>> {
    const { operation } = await this.d.machine.queue({
      vmId,
      operation: { kind: 'device', actor, input: change as unknown as Record<string, unknown> },
    });
    await this.d.waiter.result(operation.id, LIVE_ANSWER_MS);
    return { item: await view(), applied: 'live', operation_id: operation.id };
  }

  async host(row: VmRow) {
    if (!row.hostId) throw new Conflict('vm_not_placed', `VM ${row.id} has no host`);
    return this.d.vms.agentTarget(row.hostId);
  }

  // Drives

  private driveView(d: DriveRow, index: number): Drive {
    return {
      drive_id: d.driveId,
      size_mib: d.sizeMib,
      image_id: d.imageId,
      is_read_only: d.isReadOnly,
      cache_type: d.cacheType,
      io_engine: d.ioEngine,
      rate_limiter: (d.rateLimiter as RateLimiter | null) ?? null,
      // vda is the root disk, vdb the guest tools drive
      guest_device: `/dev/vd${String.fromCharCode(99 + index)}`,
    };
  }

  async listDrives(vmId: string): Promise<Drive[]> {
    await this.d.vms.row(vmId);
    return (await this.d.repo.drives(vmId)).map((d, i) => this.driveView(d, i));
  }

  async getDrive(vmId: string, driveId: string): Promise<Drive> {
    const all = await this.listDrives(vmId);
    const found = all.find((d) => d.drive_id === driveId);
    if (!found) throw new NotFound('drive', driveId);
    return found;
  }

  async createDrive(vmId: string, req: CreateDriveRequest, actor: string): Promise<Changed<Drive>> {
    if (['rootfs', 'tools'].includes(req.drive_id))
      throw new Unprocessable('reserved_drive_id', `${req.drive_id} is reserved`, 'body.drive_id');
    if ((req.size_mib === undefined) === (req.image_id === undefined))
      throw new Unprocessable('drive_source', 'give exactly one of size_mib (blank) or image_id', 'body.size_mib');
    if (req.image_id) {
      const img = await this.d.images.find(req.image_id);
      if (!img) throw new Unprocessable('unknown_image', `image ${req.image_id} does not exist`, 'body.image_id');
      if (img.kind !== 'rootfs')
        throw new Unprocessable('wrong_image_kind', `image ${req.image_id} is a ${img.kind}`, 'body.image_id');
      if (img.state !== 'ready') throw new Unprocessable('image_not_ready', `image is ${img.state}`, 'body.image_id');
    }
    const row = await this.d.vms.row(vmId);
    if (row.vmm !== 'qemu' && req.io_engine === 'Async')
      throw new UnsupportedOnHost('Async I/O is offered for QEMU VMs only here', 'body.io_engine');
    const drive = await this.whileStopped(vmId, 'adding a drive (no virtio-mmio hotplug)', 'drive_id', async (tx) => {
      const existing = await this.d.repo.drives(vmId, tx);
      if (existing.length >= MAX_DRIVES) throw new Conflict('too_many_drives', `at most ${MAX_DRIVES} drives`);
      if (existing.some((d) => d.driveId === req.drive_id))
        throw new Conflict('drive_exists', `drive ${req.drive_id} exists`, 'body.drive_id');
      return this.d.repo.insertDrive(tx, vmId, {
        driveId: req.drive_id,
        sizeMib: req.size_mib ?? null,
        imageId: req.image_id ?? null,
        isReadOnly: req.is_read_only ?? false,
        cacheType: req.cache_type ?? 'Writeback',
        ioEngine: req.io_engine ?? 'Sync',
        rateLimiter: req.rate_limiter ?? null,
      });
    });
    await this.record(actor, vmId, 'drive_add', { drive_id: req.drive_id });
    return { item: await this.getDrive(vmId, drive.driveId), applied: 'next_boot' };
  }

  async updateDrive(vmId: string, driveId: string, rl: RateLimiter | null, actor: string): Promise<Changed<Drive>> {
    await this.getDrive(vmId, driveId);
    const row = await this.d.vms.row(vmId);
    const applied: Applied = 'next_boot';
    if (LIVE.includes(row.state))
      return this.live(
        vmId,
        actor,
        {
          device: 'drive',
          id: driveId,
          rate_limiter: rl,
          action: 'drive_update',
          detail: { drive_id: driveId, rate_limiter: rl, applied: 'live' },
        },
        () => this.getDrive(vmId, driveId),
      );
    if (!STOPPED.includes(row.state)) throw new RequiresStop('changing a drive', 'drive_id', row.state);
    await this.d.repo.updateDrive(vmId, driveId, rl);
    await this.record(actor, vmId, 'drive_update', { drive_id: driveId, rate_limiter: rl, applied });
    return { item: await this.getDrive(vmId, driveId), applied };
  }

  async deleteDrive(vmId: string, driveId: string, actor: string): Promise<void> {
    await this.whileStopped(vmId, 'removing a drive (no virtio-mmio hotplug)', 'drive_id', async (tx) => {
      if (!(await this.d.repo.deleteDrive(tx, vmId, driveId))) throw new NotFound('drive', driveId);
    });
    await this.record(actor, vmId, 'drive_remove', { drive_id: driveId });
  }

  // NICs

  private async nicRows(vmId: string) {
    await this.d.vms.row(vmId);
    return (await this.d.vmsRepo.nics([vmId])).get(vmId) ?? [];
  }

  private async nicView(n: {
    ifaceId: string;
    network: string;
    mac: string;
    ip: string;
    config: Record<string, unknown>;
  }): Promise<Nic> {
    const net = await this.d.vmsRepo.network(n.network);
    return {
      iface_id: n.ifaceId,
      network: n.network,
      mac: n.mac,
      ip: n.ip,
      gateway: net?.gateway ?? '',
      rx_rate_limiter: (n.config.rx_rate_limiter as RateLimiter | undefined) ?? null,
      tx_rate_limiter: (n.config.tx_rate_limiter as RateLimiter | undefined) ?? null,
    };
  }

  async listNics(vmId: string): Promise<Nic[]> {
    return Promise.all((await this.nicRows(vmId)).map((n) => this.nicView(n)));
  }

  async getNic(vmId: string, ifaceId: string): Promise<Nic> {
    const n = (await this.nicRows(vmId)).find((x) => x.ifaceId === ifaceId);
    if (!n) throw new NotFound('nic', ifaceId);
    return this.nicView(n);
  }

  async createNic(vmId: string, req: CreateNicRequest, actor: string): Promise<Changed<Nic>> {
    checkNicLimiter(req.rx_rate_limiter, 'body.rx_rate_limiter');
    checkNicLimiter(req.tx_rate_limiter, 'body.tx_rate_limiter');
    const networkName = req.network ?? 'default';
    const net = await this.d.vmsRepo.network(networkName);
    if (!net) throw new Unprocessable('network_not_found', `network ${networkName} does not exist`, 'body.network');
    const config = {
      ...(req.rx_rate_limiter ? { rx_rate_limiter: req.rx_rate_limiter } : {}),
      ...(req.tx_rate_limiter ? { tx_rate_limiter: req.tx_rate_limiter } : {}),
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const nic = await this.whileStopped(vmId, 'adding a NIC (no virtio-mmio hotplug)', 'nic_id', async (tx) => {
          const existing = await this.d.repo.nicsOf(tx, vmId);
          if (existing.length >= MAX_NICS) throw new Conflict('too_many_nics', `at most ${MAX_NICS} NICs`);
          const taken = new Set(existing.map((n) => n.ifaceId));
          let k = 0;
          while (taken.has(`eth${k}`)) k++;
          const ip = await claimAddress(tx, net.name, vmId);
          if (!ip) throw new Conflict('network_full', `network ${net.name} has no free address`, 'body.network');
          return this.d.repo.insertNic(tx, {
            vmId,
            ifaceId: `eth${k}`,
            network: net.name,
            mac: req.mac ?? randomMac(),
            ip,
            config,
          });
        });
        await this.record(actor, vmId, 'nic_add', { iface_id: nic.ifaceId, mac: nic.mac, ip: nic.ip });
        return { item: await this.nicView(nic), applied: 'next_boot' };
      } catch (err) {
        const constraint = isUniqueViolation(err);
        if (!constraint) throw err;
        if (req.mac && constraint.includes('mac'))
          throw new Conflict('mac_taken', `MAC ${req.mac} is used by another NIC`, 'body.mac');
        // Only a random MAC can collide (1 in 2^40 per pair): draw another.
        if (!constraint.includes('mac') || attempt >= 3) throw err;
      }
    }
  }

  async updateNic(
    vmId: string,
    ifaceId: string,
    req: { rx_rate_limiter?: RateLimiter | null; tx_rate_limiter?: RateLimiter | null },
    actor: string,
  ): Promise<Changed<Nic>> {
    checkNicLimiter(req.rx_rate_limiter, 'body.rx_rate_limiter');
    checkNicLimiter(req.tx_rate_limiter, 'body.tx_rate_limiter');
    const current = (await this.nicRows(vmId)).find((x) => x.ifaceId === ifaceId);
    if (!current) throw new NotFound('nic', ifaceId);
    const config = { ...current.config };
    for (const k of ['rx_rate_limiter', 'tx_rate_limiter'] as const) {
      if (req[k] === null) delete config[k];
      else if (req[k] !== undefined) config[k] = req[k];
    }
    const row = await this.d.vms.row(vmId);
    const applied: Applied = 'next_boot';
    if (LIVE.includes(row.state))
      return this.live(
        vmId,
        actor,
        {
          device: 'nic',
          id: ifaceId,
          config,
          action: 'nic_update',
          detail: { iface_id: ifaceId, ...req, applied: 'live' },
        },
        () => this.getNic(vmId, ifaceId),
      );
    if (!STOPPED.includes(row.state)) throw new RequiresStop('changing a NIC', 'nic_id', row.state);
    await this.d.repo.updateNicConfig(vmId, ifaceId, config);
    await this.record(actor, vmId, 'nic_update', { iface_id: ifaceId, ...req, applied });
    return { item: await this.getNic(vmId, ifaceId), applied };
  }

  async deleteNic(vmId: string, ifaceId: string, actor: string): Promise<void> {
    if (ifaceId === 'eth0')
      throw new Unprocessable(
        'primary_nic',
        'eth0 carries the guest agent; create the VM with network null instead',
        'nic_id',
      );
    await this.whileStopped(vmId, 'removing a NIC (no virtio-mmio hotplug)', 'nic_id', async (tx) => {
      if (!(await this.d.repo.deleteNic(tx, vmId, ifaceId))) throw new NotFound('nic', ifaceId);
    });
    await this.record(actor, vmId, 'nic_remove', { iface_id: ifaceId });
  }
}
