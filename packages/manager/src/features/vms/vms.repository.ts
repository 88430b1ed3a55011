import type { VmState } from '@nqvm/api';
import { and, asc, desc, eq, ilike, inArray, notInArray, or, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { networks, vmNics, vms } from '../../db/schema.ts';

export type VmRow = typeof vms.$inferSelect;
export type NewVmRow = typeof vms.$inferInsert;
export type NicRow = typeof vmNics.$inferSelect;
export type NetworkRow = typeof networks.$inferSelect;

export interface VmListFilter {
  search?: string;
  state?: VmState;
  hostId?: string;
  tag?: string;
  owner?: string;
  environment?: string;
}

export type SortKey = 'name' | 'created_at' | 'state';

const SORT_COLUMNS = { name: vms.name, created_at: vms.createdAt, state: vms.state } as const;

/** States whose VMs hold resources on their host. */
const HOLDING: VmState[] = ['creating', 'starting', 'running', 'paused', 'stopping', 'unknown'];

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

  async usedIps(network: string): Promise<Set<string>> {
    const rows = await this.db.select({ ip: vmNics.ip }).from(vmNics).where(eq(vmNics.network, network));
    return new Set(rows.map((r) => r.ip.replace(/\/\d+$/, '')));
  }

  /** Inserts the VM and its NIC in one transaction; unique violations surface to the caller for a retry. */
  async insert(vm: NewVmRow, nic: Omit<NicRow, 'vmId'> | null): Promise<VmRow> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.insert(vms).values(vm).returning();
      if (nic) await tx.insert(vmNics).values({ ...nic, vmId: row!.id });
      return row!;
    });
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

  /**
   * Compare-and-set on the state: only moves the VM when it is still in one of `from`, so two requests
   * racing on one VM cannot both win. Returns the updated row, or undefined when the guard failed.
   */
  async transition(
    id: string,
    from: readonly VmState[],
    to: VmState,
    patch: Partial<NewVmRow> = {},
  ): Promise<VmRow | undefined> {
    const [row] = await this.db
      .update(vms)
      .set({ ...patch, state: to, updatedAt: new Date() })
      .where(and(eq(vms.id, id), inArray(vms.state, [...from])))
      .returning();
    return row;
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

  async list(f: VmListFilter, sort: SortKey, dir: 'asc' | 'desc', limit: number, after?: [string, string]) {
    const col = SORT_COLUMNS[sort];
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
    if (after) {
      const value = sort === 'created_at' ? new Date(after[0]) : after[0];
      w.push(
        dir === 'asc'
          ? sql`(${col}, ${vms.id}) > (${value}, ${after[1]})`
          : sql`(${col}, ${vms.id}) < (${value}, ${after[1]})`,
      );
    }
    const order = dir === 'asc' ? [asc(col), asc(vms.id)] : [desc(col), desc(vms.id)];
    return this.db
      .select()
      .from(vms)
      .where(and(...w))
      .orderBy(...order)
      .limit(limit);
  }

  async allocationsByHost(): Promise<Map<string, { vcpu: number; mem_mib: number; vms: number }>> {
    const rows = await this.db
      .select({
        hostId: vms.hostId,
        vcpu: sql<number>`coalesce(sum(case when ${inArray(vms.state, HOLDING)} then ${vms.vcpu} else 0 end), 0)::int`,
        mem: sql<number>`coalesce(sum(case when ${inArray(vms.state, HOLDING)} then ${vms.memMib} else 0 end), 0)::int`,
        count: sql<number>`count(*)::int`,
      })
      .from(vms)
      .groupBy(vms.hostId);
    const out = new Map<string, { vcpu: number; mem_mib: number; vms: number }>();
    for (const r of rows)
      if (r.hostId) out.set(r.hostId, { vcpu: Number(r.vcpu), mem_mib: Number(r.mem), vms: Number(r.count) });
    return out;
  }

  byHost(hostId: string): Promise<VmRow[]> {
    return this.db.select().from(vms).where(eq(vms.hostId, hostId));
  }

  inStates(states: VmState[]): Promise<VmRow[]> {
    return this.db.select().from(vms).where(inArray(vms.state, states));
  }

  async imageInUse(imageId: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: vms.id })
      .from(vms)
      .where(
        and(
          or(eq(vms.kernelImageId, imageId), eq(vms.initrdImageId, imageId), eq(vms.rootfsImageId, imageId)),
          notInArray(vms.state, ['deleting']),
        ),
      )
      .limit(1);
    return rows.length > 0;
  }
}
