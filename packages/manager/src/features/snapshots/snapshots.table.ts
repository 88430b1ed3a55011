import { bigint, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

// Mirrors migrations/0006_snapshots_mmds.sql (the migration is the source of truth for DDL).
const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const snapshots = pgTable('snapshots', {
  id: uuid('id').primaryKey().defaultRandom(),
  vmId: uuid('vm_id'),
  hostId: uuid('host_id'),
  name: text('name').notNull(),
  snapshotType: text('snapshot_type').$type<'Full' | 'Diff'>().notNull(),
  parentId: uuid('parent_id'),
  state: text('state').$type<'creating' | 'ready' | 'error'>().notNull(),
  stateBytes: bigint('state_bytes', { mode: 'number' }).notNull(),
  diskBytes: bigint('disk_bytes', { mode: 'number' }).notNull(),
  sourceSpec: jsonb('source_spec').$type<Record<string, unknown>>().notNull(),
  passwordEnc: text('password_enc'),
  /** The source VM's project (migration 0020). */
  projectId: uuid('project_id').notNull().default('00000000-0000-4000-8000-000000000001'),
  error: text('error'),
  createdAt: tz('created_at').notNull().defaultNow(),
});

export const vmMmds = pgTable('vm_mmds', {
  vmId: uuid('vm_id').primaryKey(),
  version: text('version').$type<'V1' | 'V2'>().notNull(),
  ipv4Address: text('ipv4_address').notNull(),
  networkInterfaces: jsonb('network_interfaces').$type<string[]>().notNull(),
  data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});
