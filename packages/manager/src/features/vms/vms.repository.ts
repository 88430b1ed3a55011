import type { VmState } from '@nqvm/api';
import { and, eq, ilike, inArray, notInArray, or, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { isoMs, type JsonPage, jsonPage, type Key } from '../../db/keyset.ts';
import { hosts, networks, vmNics, vms } from '../../db/schema.ts';
import { Conflict } from '../../domain/errors.ts';
import { inProjects } from '../../http/scope.ts';
import type { HostRow } from '../hosts/hosts.repository.ts';
import type { Allocation } from '../hosts/hosts.service.ts';
import { insertNicWithAddress } from './address-pool.ts';

export type VmRow = typeof vms.$inferSelect;
export type NewVmRow = typeof vms.$inferInsert;
export type NicRow = typeof vmNics.$inferSelect;
export type NetworkRow = typeof networks.$inferSelect;
type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export interface VmListFilter {
  search?: string;
  state?: VmState;
  hostId?: string;
  tag?: string;
  owner?: string;
  environment?: string;
  /** Only these projects' (null: every project). */
  projects?: string[] | null;
  projectId?: string;
}

export type SortKey = 'name' | 'created_at' | 'state';

const ID: Key = { column: 'id', kind: 'uuid' };
/** Each sort's keyset, the id last; every one is the tail of an index (migration 0008). */
export const SORT_KEYS: Record<SortKey, Key[]> = {
  name: [{ column: 'name', kind: 'text' }, ID],
  created_at: [{ column: 'created_at', kind: 'timestamptz' }, ID],
  state: [{ column: 'state', kind: 'text' }, ID],
};

/** A VM as the API's Vm (see toVm), NICs included, over a row aliased `v`. */
const VM_JSON = sql`json_build_object(
  'id', v.id, 'name', v.name, 'description', v.description, 'state', v.state, 'project_id', v.project_id, 'host_id', v.host_id, 'vmm', v.vmm,
  'vcpu', v.vcpu, 'mem_mib', v.mem_mib, 'smt', v.smt, 'cpu_template', v.cpu_template,
  'kernel_image_id', v.kernel_image_id, 'initrd_image_id', v.initrd_image_id, 'rootfs_image_id', v.rootfs_image_id,
  'boot_args', v.boot_args,
  'nics', (SELECT coalesce(json_agg(json_build_object(
      'iface_id', n.iface_id, 'network', n.network, 'mac', n.mac, 'ip', n.ip::text,
      'gateway', coalesce(host(w.gateway), ''), 'tap', NULL) ORDER BY n.iface_id), '[]')
    FROM vm_nics n LEFT JOIN networks w ON w.name = n.network WHERE n.vm_id = v.id),
  'guest_ip', v.guest_ip, 'tags', v.tags, 'owner', v.owner, 'environment', v.environment,
  'restart_policy', v.restart_policy, 'username', v.username, 'template_id', v.template_id,
  'source_snapshot_id', v.source_snapshot_id, 'pid', v.pid, 'last_error', v.last_error,
  'restart_count', v.restart_count, 'created_at', ${isoMs(sql`v.created_at`)},
  'updated_at', ${isoMs(sql`v.updated_at`)},
  'booted_at', ${isoMs(sql`v.booted_at`)}, 'guest_ready_at', ${isoMs(sql`v.guest_ready_at`)})`;

/** A NIC to add with a new VM; its address is claimed from the network's pool. */
export interface NewNic {
  ifaceId: string;
  network: string;
  mac: string;
  config: Record<string, unknown>;
}

/** States whose VMs hold resources on their host; nqvm_vm_holds (migration 0011) says the same in SQL. */
export const HOLDING: VmState[] = ['creating', 'starting', 'running', 'paused', 'stopping', 'unknown'];

function isUniqueViolation(err: unknown): string | undefined {
  const e = (err as { cause?: { code?: string; constraint?: string }; code?: string; constraint?: string }) ?? {};
  const inner = e.cause ?? e;
  return inner.code === '23505' ? (inner.constraint ?? 'unique') : undefined;
}

export { isUniqueViolation };

export class VmsRepository {
  constructor(private readonly db: Db) {}

  async ensureNetwork(n: { name: string; cidr: string; gateway: string; bridge: string; nat: boolean }) {
    await this.db.insert(networks).values(n).onConflictDoNothing({ target: networks.name });
  }

  async network(name: string): Promise<NetworkRow | undefined> {
    const [row] = await this.db.select().from(networks).where(eq(networks.name, name));
    return row;
  }

  /**
   * Inserts the VM and its NIC, whose address is claimed from the pool, in one transaction. Unique violations (name,
   * MAC) surface to the caller; a network without a free address is a 409 `network_full`.
   */
  insert(vm: NewVmRow, nic: NewNic | null): Promise<{ row: VmRow; nic: NicRow | null }> {
    return this.db.transaction((tx) => this.insertIn(tx, vm, nic));
  }

  /** `insert` inside the caller's transaction (the state machine's, which adds the event and the operation). */
  async insertIn(tx: Tx, vm: NewVmRow, nic: NewNic | null): Promise<{ row: VmRow; nic: NicRow | null }> {
    const [row] = await tx.insert(vms).values(vm).returning();
    if (!nic) return { row: row!, nic: null };
    const added = await insertNicWithAddress(tx, { ...nic, vmId: row!.id });
    if (!added) throw new Conflict('network_full', `network ${nic.network} has no free address`, 'body.network');
    return { row: row!, nic: added };
  }

  async get(id: string): Promise<VmRow | undefined> {
    const [row] = await this.db.select().from(vms).where(eq(vms.id, id));
    return row;
  }

  async nics(vmIds: string[]): Promise<Map<string, NicRow[]>> {
    const out = new Map<string, NicRow[]>();
    if (vmIds.length === 0) return out;
    const rows = await this.db.select().from(vmNics).where(inArray(vmNics.vmId, vmIds)).orderBy(vmNics.ifaceId);
    for (const r of rows) out.set(r.vmId, [...(out.get(r.vmId) ?? []), r]);
    return out;
  }

  async update(id: string, patch: Partial<NewVmRow>): Promise<VmRow | undefined> {
    const [row] = await this.db
      .update(vms)
      .set({ ...patch, updatedAt: new Date() })
      .where(eq(vms.id, id))
      .returning();
    return row;
  }

  async idByGuestTokenHash(hash: string): Promise<string | undefined> {
    const [row] = await this.db.select({ id: vms.id }).from(vms).where(eq(vms.guestTokenHash, hash));
    return row?.id;
  }

  async delete(id: string): Promise<void> {
    await this.db.delete(vms).where(eq(vms.id, id));
  }

  /** One page as the API's Vm JSON, NICs included, in one query (see jsonPage). */
  listJson(f: VmListFilter, sort: SortKey, dir: 'asc' | 'desc', limit: number, after?: string[]): Promise<JsonPage> {
    const w: SQL[] = [];
    if (f.search) {
      const like = `%${f.search.replace(/[%_\\]/g, (c) => `\\${c}`)}%`;
      w.push(or(ilike(vms.name, like), ilike(vms.description, like), ilike(sql`coalesce(${vms.guestIp}, '')`, like))!);
    }
    if (f.state) w.push(eq(vms.state, f.state));
    if (f.hostId) w.push(eq(vms.hostId, f.hostId));
    if (f.owner) w.push(eq(vms.owner, f.owner));
    if (f.environment) w.push(eq(vms.environment, f.environment));
    if (f.tag) w.push(sql`${vms.tags} @> ARRAY[${f.tag}]::text[]`);
    if (f.projectId) w.push(eq(vms.projectId, f.projectId));
    if (f.projects) w.push(inProjects(vms.projectId, f.projects));
    return jsonPage(this.db, { table: 'vms', where: w, keys: SORT_KEYS[sort], dir, limit, after, item: VM_JSON });
  }

  /** What is placed on each host, one row per host kept by a trigger on vms (migration 0011). */
  /** What each host holds (every host's, or those of `hostIds`). */
  async allocationsByHost(hostIds?: string[]): Promise<Map<string, { vcpu: number; mem_mib: number; vms: number }>> {
    if (hostIds?.length === 0) return new Map();
    const only = hostIds
      ? sql` WHERE host_id IN (${sql.join(
          hostIds.map((id) => sql`${id}::uuid`),
          sql`, `,
        )})`
      : sql``;
    const res = (await this.db.execute(
      sql`SELECT host_id::text AS host_id, vcpu::int AS vcpu, mem_mib::int AS mem, vms::int AS count FROM host_allocations${only}`,
    )) as unknown as { rows: { host_id: string; vcpu: number; mem: number; count: number }[] };
    return new Map(
      res.rows.map((r) => [r.host_id, { vcpu: Number(r.vcpu), mem_mib: Number(r.mem), vms: Number(r.count) }]),
    );
  }

  /** Every host with what it holds, in one query (placing a VM reads both). */
  async hostsWithAllocations(): Promise<{ row: HostRow; alloc: Allocation | undefined }[]> {
    const rows = await this.db
      .select({
        row: hosts,
        alloc: sql<[number, number, number] | null>`(SELECT json_build_array(a.vcpu, a.mem_mib, a.vms)
          FROM host_allocations a WHERE a.host_id = ${hosts.id})`,
      })
      .from(hosts)
      .orderBy(hosts.name);
    return rows.map(({ row, alloc }) => ({
      row,
      alloc: alloc ? { vcpu: Number(alloc[0]), mem_mib: Number(alloc[1]), vms: Number(alloc[2]) } : undefined,
    }));
  }

  byHost(hostId: string): Promise<VmRow[]> {
    return this.db.select().from(vms).where(eq(vms.hostId, hostId));
  }

  inStates(states: VmState[]): Promise<VmRow[]> {
    return this.db.select().from(vms).where(inArray(vms.state, states));
  }

  /** The VMs referencing an image version, as `vm:<name>` (at most 20), for a 409 that names them. */
  async imageUsers(imageId: string): Promise<string[]> {
    const rows = await this.db
      .select({ name: vms.name })
      .from(vms)
      .where(
        and(
          or(eq(vms.kernelImageId, imageId), eq(vms.initrdImageId, imageId), eq(vms.rootfsImageId, imageId)),
          notInArray(vms.state, ['deleting']),
        ),
      )
      .orderBy(vms.name)
      .limit(20);
    return rows.map((r) => `vm:${r.name}`);
  }
}
