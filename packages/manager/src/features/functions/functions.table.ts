import type { InvocationError, InvocationStart, InvocationState, RuntimeName } from '@nqvm/api';
import { bigserial, boolean, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

// Mirrors migrations/0025_functions.sql (the migration is the source of truth for DDL).
const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const functions = pgTable('functions', {
  id: uuid('id').primaryKey().defaultRandom(),
  projectId: uuid('project_id').notNull(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  runtime: text('runtime').$type<RuntimeName>().notNull(),
  concurrency: integer('concurrency').notNull(),
  queueLimit: integer('queue_limit').notNull(),
  httpEnabled: boolean('http_enabled').notNull(),
  httpTokenHash: text('http_token_hash'),
  version: integer('version').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

export type VersionSnapshotState = 'none' | 'building' | 'ready' | 'failed';

export const functionVersions = pgTable('function_versions', {
  id: uuid('id').primaryKey().defaultRandom(),
  functionId: uuid('function_id').notNull(),
  version: integer('version').notNull(),
  runtime: text('runtime').$type<RuntimeName>().notNull(),
  handler: text('handler').notNull(),
  files: jsonb('files').$type<Record<string, string>>().notNull(),
  vcpu: integer('vcpu').notNull(),
  memMib: integer('mem_mib').notNull(),
  timeoutMs: integer('timeout_ms').notNull(),
  network: boolean('network').notNull(),
  env: jsonb('env').$type<Record<string, string>>().notNull(),
  secretsEnc: jsonb('secrets_enc').$type<Record<string, string>>().notNull(),
  snapshotState: text('snapshot_state').$type<VersionSnapshotState>().notNull(),
  snapshotId: uuid('snapshot_id'),
  builderVmId: uuid('builder_vm_id'),
  createdAt: tz('created_at').notNull().defaultNow(),
});

export const functionInvocations = pgTable('function_invocations', {
  id: uuid('id').primaryKey().defaultRandom(),
  seq: bigserial('seq', { mode: 'bigint' }).notNull(),
  functionId: uuid('function_id').notNull(),
  versionId: uuid('version_id').notNull(),
  version: integer('version').notNull(),
  state: text('state').$type<InvocationState>().notNull(),
  trigger: text('trigger').$type<'api' | 'http'>().notNull(),
  start: text('start').$type<InvocationStart>(),
  event: jsonb('event').$type<unknown>(),
  value: jsonb('value').$type<unknown>(),
  error: jsonb('error').$type<InvocationError>(),
  stdout: text('stdout').notNull(),
  stderr: text('stderr').notNull(),
  stdoutTruncated: boolean('stdout_truncated').notNull(),
  stderrTruncated: boolean('stderr_truncated').notNull(),
  durationMs: integer('duration_ms'),
  totalMs: integer('total_ms'),
  vmId: uuid('vm_id'),
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: tz('lease_expires_at'),
  createdAt: tz('created_at').notNull().defaultNow(),
  startedAt: tz('started_at'),
  finishedAt: tz('finished_at'),
});

export type InstanceState = 'starting' | 'ready' | 'taken';

export const functionInstances = pgTable('function_instances', {
  vmId: uuid('vm_id').primaryKey(),
  versionId: uuid('version_id').notNull(),
  functionId: uuid('function_id').notNull(),
  state: text('state').$type<InstanceState>().notNull(),
  owner: text('owner'),
  createdAt: tz('created_at').notNull().defaultNow(),
});
