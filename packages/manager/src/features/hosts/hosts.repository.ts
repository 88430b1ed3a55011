import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { hosts } from '../../db/schema.ts';

export type HostRow = typeof hosts.$inferSelect;

export class HostsRepository {
  constructor(private readonly db: Db) {}

  /** Registering again under the same name rotates the secret and keeps the host id (agent reinstalled). */
  async upsert(h: {
    name: string;
    addr: string;
    secretHash: string;
    secretEnc: string;
    labels: Record<string, string>;
    capacity: unknown;
    capabilities: unknown;
    now: Date;
  }): Promise<HostRow> {
    const values = {
      name: h.name,
      addr: h.addr,
      secretHash: h.secretHash,
      secretEnc: h.secretEnc,
      labels: h.labels,
      capacity: h.capacity,
      capabilities: h.capabilities,
      reportedVms: [],
      lastSeenAt: h.now,
    };
    const [row] = await this.db
      .insert(hosts)
      .values(values)
      .onConflictDoUpdate({
        target: hosts.name,
        set: {
          addr: values.addr,
          secretHash: values.secretHash,
          secretEnc: values.secretEnc,
          labels: values.labels,
          capacity: values.capacity,
          capabilities: values.capabilities,
          lastSeenAt: values.lastSeenAt,
        },
      })
      .returning();
    return row!;
  }

  async get(id: string): Promise<HostRow | undefined> {
    const [row] = await this.db.select().from(hosts).where(eq(hosts.id, id));
    return row;
  }

  list(): Promise<HostRow[]> {
    return this.db.select().from(hosts).orderBy(hosts.name);
  }

  /** Records a heartbeat; `addr` (when given) replaces the agent URL. Returns the URL the row had before. */
  async heartbeat(
    id: string,
    hb: { capacity: unknown; capabilities: unknown; vms: unknown[]; now: Date; addr?: string },
  ): Promise<{ previousAddr: string } | undefined> {
    return this.db.transaction(async (tx) => {
      const [before] = await tx.select({ addr: hosts.addr }).from(hosts).where(eq(hosts.id, id)).for('update');
      if (!before) return undefined;
      await tx
        .update(hosts)
        .set({
          capacity: hb.capacity,
          capabilities: hb.capabilities,
          reportedVms: hb.vms,
          lastSeenAt: hb.now,
          ...(hb.addr ? { addr: hb.addr } : {}),
        })
        .where(eq(hosts.id, id));
      return { previousAddr: before.addr };
    });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.delete(hosts).where(eq(hosts.id, id)).returning({ id: hosts.id })).length === 1;
  }
}
