import type { VmState } from '@nqvm/api';
import { and, asc, eq, max } from 'drizzle-orm';
import { boolean, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { Db } from '../../db/client.ts';
import { vmNics, vms } from '../../db/schema.ts';
import type { VmRow } from '../vms/vms.repository.ts';

type Limiter = Record<string, unknown>;

export const vmDrives = pgTable('vm_drives', {
  vmId: uuid('vm_id').notNull(),
  driveId: text('drive_id').notNull(),
  sizeMib: integer('size_mib'),
  imageId: uuid('image_id'),
  isReadOnly: boolean('is_read_only').notNull(),
  cacheType: text('cache_type').$type<'Unsafe' | 'Writeback'>().notNull(),
  ioEngine: text('io_engine').$type<'Sync' | 'Async'>().notNull(),
  rateLimiter: jsonb('rate_limiter').$type<Limiter | null>(),
  position: integer('position').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});

export type DriveRow = typeof vmDrives.$inferSelect;
export type NewDriveRow = Omit<typeof vmDrives.$inferInsert, 'position' | 'vmId'>;
export type NicRow = typeof vmNics.$inferSelect;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** The states in which a VM's devices may be added, removed or reconfigured for its next boot. */
export const STOPPED: readonly VmState[] = ['stopped', 'error'];

export class DevicesRepository {
  constructor(private readonly db: Db) {}

  /** Runs `fn` with the VM row locked, so no start can slip in between the state check and the write. */
  locked<T>(vmId: string, fn: (tx: Tx, row: VmRow | undefined) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(vms).where(eq(vms.id, vmId)).for('update');
      return fn(tx, row);
    });
  }

  /** Inside a transaction every read goes through it (embedded PGlite has one connection). */
  nicsOf(tx: Tx, vmId: string): Promise<NicRow[]> {
    return tx.select().from(vmNics).where(eq(vmNics.vmId, vmId));
  }

  drives(vmId: string, tx: Tx | Db = this.db): Promise<DriveRow[]> {
    return tx.select().from(vmDrives).where(eq(vmDrives.vmId, vmId)).orderBy(asc(vmDrives.position));
  }

  async insertDrive(tx: Tx, vmId: string, d: NewDriveRow): Promise<DriveRow> {
    const [top] = await tx
      .select({ p: max(vmDrives.position) })
      .from(vmDrives)
      .where(eq(vmDrives.vmId, vmId));
    const [row] = await tx
      .insert(vmDrives)
      .values({ ...d, vmId, position: (top?.p ?? -1) + 1 })
      .returning();
    return row!;
  }

  async updateDrive(vmId: string, driveId: string, rateLimiter: Limiter | null, tx: Tx | Db = this.db) {
    const [row] = await tx
      .update(vmDrives)
      .set({ rateLimiter })
      .where(and(eq(vmDrives.vmId, vmId), eq(vmDrives.driveId, driveId)))
      .returning();
    return row;
  }

  async deleteDrive(tx: Tx, vmId: string, driveId: string): Promise<boolean> {
    const rows = await tx
      .delete(vmDrives)
      .where(and(eq(vmDrives.vmId, vmId), eq(vmDrives.driveId, driveId)))
      .returning({ id: vmDrives.driveId });
    return rows.length > 0;
  }

  async insertNic(tx: Tx, nic: NicRow): Promise<NicRow> {
    const [row] = await tx.insert(vmNics).values(nic).returning();
    return row!;
  }

  async updateNicConfig(vmId: string, ifaceId: string, config: Record<string, unknown>, tx: Tx | Db = this.db) {
    const [row] = await tx
      .update(vmNics)
      .set({ config })
      .where(and(eq(vmNics.vmId, vmId), eq(vmNics.ifaceId, ifaceId)))
      .returning();
    return row;
  }

  async deleteNic(tx: Tx, vmId: string, ifaceId: string): Promise<boolean> {
    const rows = await tx
      .delete(vmNics)
      .where(and(eq(vmNics.vmId, vmId), eq(vmNics.ifaceId, ifaceId)))
      .returning({ id: vmNics.ifaceId });
    return rows.length > 0;
  }

  async setConfig(tx: Tx | Db | undefined, vmId: string, config: Record<string, unknown>): Promise<void> {
    await (tx ?? this.db).update(vms).set({ config, updatedAt: new Date() }).where(eq(vms.id, vmId));
  }

  async setMachine(
    tx: Tx,
    vmId: string,
    patch: Partial<Pick<typeof vms.$inferInsert, 'vcpu' | 'memMib' | 'smt' | 'cpuTemplate'>>,
  ) {
    const [row] = await tx
      .update(vms)
      .set({ ...patch, updatedAt: new Date() })
      .where(eq(vms.id, vmId))
      .returning();
    return row!;
  }
}
