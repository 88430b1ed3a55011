import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { hosts } from '../../db/schema.ts';

export type HostRow = typeof hosts.$inferSelect;

export class HostsRepository {
  constructor(private readonly db: Db) {}

  /** A new host row, or undefined when the name is taken. */
  async insert(h: {
    name: string;
    addr: string;
    secretHash: string;
    secretEnc: string;
    labels: Record<string, string>;
    capacity: unknown;
    capabilities: unknown;
    now: Date;
  }): Promise<HostRow | undefined> {
    const { now, ...rest } = h;
    const [row] = await this.db
      .insert(hosts)
      .values({ ...rest, reportedVms: [], lastSeenAt: now })
      .onConflictDoNothing({ target: hosts.name })
      .returning();
    return row;
  }

  async byName(name: string): Promise<HostRow | undefined> {
    const [row] = await this.db.select().from(hosts).where(eq(hosts.name, name));
    return row;
  }

  /**
   * Re-registration of an existing host (agent reinstalled with its identity): rotates the secret and keeps
   * the id, only while the secret is still the one the caller proved (compare-and-set).
   */
  async reRegister(
    id: string,
    previousSecretHash: string,
    h: {
      addr: string;
      secretHash: string;
      secretEnc: string;
      labels: Record<string, string>;
      capacity: unknown;
      capabilities: unknown;
      now: Date;
    },
  ): Promise<HostRow | undefined> {
    const { now, ...rest } = h;
    const [row] = await this.db
      .update(hosts)
      .set({ ...rest, lastSeenAt: now })
      .where(and(eq(hosts.id, id), eq(hosts.secretHash, previousSecretHash)))
      .returning();
    return row;
  }

  async get(id: string): Promise<HostRow | undefined> {
    const [row] = await this.db.select().from(hosts).where(eq(hosts.id, id));
    return row;
  }

  list(): Promise<HostRow[]> {
    return this.db.select().from(hosts).orderBy(hosts.name);
  }

  /** One page by name (ties by id), strictly after `after` (the last item's name and id), through (name, id). */
  page(limit: number, after?: string[]): Promise<HostRow[]> {
    return this.db
      .select()
      .from(hosts)
      .where(after ? sql`(${hosts.name}, ${hosts.id}) > (${after[0]}::text, ${after[1]}::uuid)` : undefined)
      .orderBy(asc(hosts.name), asc(hosts.id))
      .limit(limit);
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
