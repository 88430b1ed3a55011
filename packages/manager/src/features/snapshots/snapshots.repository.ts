import { and, desc, eq } from 'drizzle-orm';
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
