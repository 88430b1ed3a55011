import { type AgentMmds, agentApi, MMDS_MAX_BYTES, type MmdsConfig, type MmdsConfigView } from '@nqvm/api';
import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { DomainError, Unprocessable } from '../../domain/errors.ts';
import { vmMmds } from '../snapshots/snapshots.table.ts';
import type { AgentClient } from '../vms/agent-client.ts';
import type { VmsService } from '../vms/vms.service.ts';

type Data = Record<string, unknown>;

/** RFC 7396 JSON merge patch: null removes, objects merge recursively, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Data =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Data) } : {};
  for (const [k, v] of Object.entries(patch as Data)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const DEFAULT_CONFIG: MmdsConfigView = { version: 'V1', ipv4_address: '169.254.169.254', network_interfaces: ['eth0'] };

/** Per-VM metadata and its config, stored here and pushed to the VM's host agent, which serves it. */
export class MmdsService {
  constructor(
    private readonly db: Db,
    private readonly vms: VmsService,
    private readonly agent: AgentClient,
  ) {}

  private async current(vmId: string): Promise<{ config: MmdsConfigView; data: Data }> {
    await this.vms.row(vmId);
    const [r] = await this.db.select().from(vmMmds).where(eq(vmMmds.vmId, vmId));
    if (!r) return { config: DEFAULT_CONFIG, data: {} };
    return {
      config: { version: r.version, ipv4_address: r.ipv4Address, network_interfaces: r.networkInterfaces },
      data: r.data,
    };
  }

  async get(vmId: string): Promise<Data> {
    return (await this.current(vmId)).data;
  }

  async getConfig(vmId: string): Promise<MmdsConfigView> {
    return (await this.current(vmId)).config;
  }

  async put(vmId: string, data: Data): Promise<Data> {
    const { config } = await this.current(vmId);
    await this.save(vmId, config, data);
    return data;
  }

  async patch(vmId: string, patch: Data): Promise<Data> {
    const { config, data } = await this.current(vmId);
    const next = mergePatch(data, patch) as Data;
    await this.save(vmId, config, next);
    return next;
  }

  async putConfig(vmId: string, req: MmdsConfig): Promise<MmdsConfigView> {
    const { data } = await this.current(vmId);
    const config: MmdsConfigView = {
      version: req.version ?? 'V1',
      ipv4_address: req.ipv4_address ?? '169.254.169.254',
      network_interfaces: [...new Set(req.network_interfaces)],
    };
    await this.save(vmId, config, data);
    return config;
  }

  /** Applied on the host first (a live VM sees it at once), stored after: nothing is stored that is not served. */
  private async save(vmId: string, config: MmdsConfigView, data: Data): Promise<void> {
    if (Buffer.byteLength(JSON.stringify(data)) > MMDS_MAX_BYTES)
      throw new DomainError(413, 'mmds_too_large', `MMDS data is limited to ${MMDS_MAX_BYTES} bytes of JSON`, 'body');
    const vm = await this.vms.get(vmId);
    const nics = vm.nics.filter((n) => config.network_interfaces.includes(n.iface_id));
    for (const i of config.network_interfaces)
      if (!vm.nics.some((n) => n.iface_id === i))
        throw new Unprocessable('mmds_interface_unknown', `the VM has no interface ${i}`, 'body.network_interfaces');
    if (vm.host_id) {
      const bridges = await Promise.all(nics.map((n) => this.vms.bridgeOf(n.network)));
      const push: AgentMmds = {
        config,
        guest_ips: nics.map((n) => n.ip.split('/')[0]!),
        bridges: [...new Set(bridges.filter((b): b is string => !!b))],
        data,
      };
      await this.agent.call(await this.vms.agentTarget(vm.host_id), agentApi.mmds.put, {
        params: { id: vmId },
        body: push,
      });
    }
    const values = {
      vmId,
      version: config.version,
      ipv4Address: config.ipv4_address,
      networkInterfaces: config.network_interfaces,
      data,
      updatedAt: new Date(),
    };
    await this.db.insert(vmMmds).values(values).onConflictDoUpdate({ target: vmMmds.vmId, set: values });
  }
}
