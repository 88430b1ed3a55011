import { and, desc, eq, getTableColumns, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import type { Tx } from '../operations/operations.repository.ts';
import { snapshots } from './snapshots.table.ts';

export type SnapshotRow = typeof snapshots.$inferSelect;
export type NewSnapshotRow = typeof snapshots.$inferInsert;

export class SnapshotsRepository {
  constructor(private readonly db: Db) {}

  /** In the transaction that queues the operation saving it. */
  async insertIn(tx: Tx, row: NewSnapshotRow): Promise<SnapshotRow> {
    const [r] = await tx.insert(snapshots).values(row).returning();
    return r!;
  }

  async get(id: string): Promise<SnapshotRow | undefined> {
    const [r] = await this.db.select().from(snapshots).where(eq(snapshots.id, id));
    return r;
  }

  /**
   * One page of a VM's snapshots, newest first, strictly after `after` (the last item's created_at with microseconds
   * and id) through the (vm_id, created_at, id) index; each row carries its own cursor key.
   */
  pageForVm(vmId: string, limit: number, after?: string[]): Promise<(SnapshotRow & { key: string })[]> {
    const where = [eq(snapshots.vmId, vmId)];
    if (after)
      where.push(sql`(${snapshots.createdAt}, ${snapshots.id}) < (${after[0]}::timestamptz, ${after[1]}::uuid)`);
    return this.db
      .select({
        ...getTableColumns(snapshots),
        key: sql<string>`to_char(${snapshots.createdAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
      })
      .from(snapshots)
      .where(and(...where))
      .orderBy(desc(snapshots.createdAt), desc(snapshots.id))
      .limit(limit);
  }

  listForVm(vmId: string): Promise<SnapshotRow[]> {
    return this.db.select().from(snapshots).where(eq(snapshots.vmId, vmId)).orderBy(desc(snapshots.createdAt));
  }

  async hasChildren(id: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: snapshots.id })
      .from(snapshots)
      .where(and(eq(snapshots.parentId, id)))
      .limit(1);
    return rows.length > 0;
  }

  async delete(id: string): Promise<void> {
    await this.db.delete(snapshots).where(eq(snapshots.id, id));
  }
}
