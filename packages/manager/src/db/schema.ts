import type { VmState } from '@nqvm/api';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

// Mirrors the SQL migrations in ./migrations (the migrations are the source of truth for DDL).
const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  username: text('username').notNull(),
  passwordHash: text('password_hash').notNull(),
  role: text('role').$type<'admin' | 'user'>().notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  disabled: boolean('disabled').notNull().default(false),
  lastLoginAt: tz('last_login_at'),
});

/** The project every resource that existed before projects moved into (migration 0020). */
export const DEFAULT_PROJECT_ID = '00000000-0000-4000-8000-000000000001';

export type ProjectRole = 'owner' | 'operator' | 'viewer';

export const projects = pgTable('projects', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
});

export const projectMembers = pgTable(
  'project_members',
  {
    projectId: uuid('project_id').notNull(),
    userId: uuid('user_id').notNull(),
    role: text('role').$type<ProjectRole>().notNull(),
    createdAt: tz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.userId] })],
);

export const sessions = pgTable('sessions', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  tokenHash: text('token_hash').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  expiresAt: tz('expires_at').notNull(),
});

export const apiTokens = pgTable('api_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull(),
  name: text('name').notNull(),
  prefix: text('prefix').notNull(),
  tokenHash: text('token_hash').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  expiresAt: tz('expires_at'),
  lastUsedAt: tz('last_used_at'),
  permissions: text('permissions').array(),
  /** The project the token is scoped to; null: every project of its user. */
  projectId: uuid('project_id'),
});

export const hosts = pgTable('hosts', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  addr: text('addr').notNull(),
  secretHash: text('secret_hash').notNull(),
  secretEnc: text('secret_enc').notNull(),
  labels: jsonb('labels').$type<Record<string, string>>().notNull(),
  capacity: jsonb('capacity').$type<unknown>(),
  capabilities: jsonb('capabilities').$type<unknown>(),
  reportedVms: jsonb('reported_vms').$type<unknown[]>().notNull(),
  lastSeenAt: tz('last_seen_at'),
  createdAt: tz('created_at').notNull().defaultNow(),
});

export const hostJoinTokens = pgTable('host_join_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  tokenHash: text('token_hash').notNull().unique(),
  description: text('description').notNull().default(''),
  createdBy: text('created_by').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  expiresAt: tz('expires_at').notNull(),
  usedAt: tz('used_at'),
  hostId: uuid('host_id').references(() => hosts.id, { onDelete: 'set null' }),
});

export const managerCa = pgTable('manager_ca', {
  id: integer('id').primaryKey(),
  certPem: text('cert_pem').notNull(),
  keyEnc: text('key_enc').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
});

export const events = pgTable('events', {
  id: bigserial('id', { mode: 'bigint' }).primaryKey(),
  at: tz('at').notNull().defaultNow(),
  actor: text('actor').notNull(),
  resourceType: text('resource_type').notNull(),
  resourceId: text('resource_id'),
  action: text('action').notNull(),
  result: text('result').$type<'ok' | 'error' | 'info'>().notNull(),
  detail: jsonb('detail').$type<Record<string, unknown>>().notNull(),
});

export const images = pgTable('images', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  kind: text('kind').$type<'kernel' | 'initrd' | 'rootfs' | 'volume'>().notNull(),
  description: text('description').notNull(),
  state: text('state').$type<'importing' | 'ready'>().notNull(),
  sha256: text('sha256'),
  sizeBytes: bigint('size_bytes', { mode: 'number' }),
  bytesDone: bigint('bytes_done', { mode: 'number' }).notNull(),
  bytesTotal: bigint('bytes_total', { mode: 'number' }),
  source: jsonb('source').$type<Record<string, unknown>>().notNull(),
  version: integer('version').notNull(),
  tag: text('tag'),
  latest: boolean('latest').notNull(),
  projectId: uuid('project_id').notNull().default(DEFAULT_PROJECT_ID),
  public: boolean('public').notNull().default(false),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

export const templates = pgTable('templates', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  spec: jsonb('spec').$type<Record<string, unknown>>().notNull(),
  projectId: uuid('project_id').notNull().default(DEFAULT_PROJECT_ID),
  public: boolean('public').notNull().default(false),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

export const templateImages = pgTable(
  'template_images',
  { templateId: uuid('template_id').notNull(), imageId: uuid('image_id').notNull() },
  (t) => [primaryKey({ columns: [t.templateId, t.imageId] })],
);

export const networks = pgTable('networks', {
  name: text('name').primaryKey(),
  cidr: text('cidr').notNull(),
  gateway: text('gateway').notNull(),
  bridge: text('bridge').notNull(),
  nat: boolean('nat').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
});

export const vms = pgTable('vms', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  state: text('state').$type<VmState>().notNull(),
  hostId: uuid('host_id'),
  vmm: text('vmm').$type<'qemu' | 'firecracker'>().notNull(),
  vcpu: integer('vcpu').notNull(),
  memMib: integer('mem_mib').notNull(),
  smt: boolean('smt').notNull(),
  cpuTemplate: text('cpu_template').$type<'C3' | 'T2' | 'T2S' | 'T2CL' | 'T2A' | 'None'>().notNull(),
  kernelImageId: uuid('kernel_image_id').notNull(),
  initrdImageId: uuid('initrd_image_id'),
  rootfsImageId: uuid('rootfs_image_id').notNull(),
  bootArgs: text('boot_args').notNull(),
  tags: text('tags').array().notNull(),
  owner: text('owner').notNull(),
  environment: text('environment').notNull(),
  restartPolicy: text('restart_policy').$type<'never' | 'on-failure' | 'always'>().notNull(),
  username: text('username'),
  passwordEnc: text('password_enc'),
  sshAuthorizedKeys: jsonb('ssh_authorized_keys').$type<string[]>().notNull(),
  guestTokenHash: text('guest_token_hash').notNull(),
  guestTokenEnc: text('guest_token_enc').notNull(),
  templateId: uuid('template_id'),
  sourceSnapshotId: uuid('source_snapshot_id'),
  guestIp: text('guest_ip'),
  pid: integer('pid'),
  lastError: text('last_error'),
  restartCount: integer('restart_count').notNull(),
  desiredRunning: boolean('desired_running').notNull(),
  config: jsonb('config').$type<Record<string, unknown>>().notNull(),
  projectId: uuid('project_id').notNull().default(DEFAULT_PROJECT_ID),
  createdBy: text('created_by').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
  bootedAt: tz('booted_at'),
  guestReadyAt: tz('guest_ready_at'),
});

export const vmNics = pgTable('vm_nics', {
  vmId: uuid('vm_id').notNull(),
  ifaceId: text('iface_id').notNull(),
  network: text('network').notNull(),
  mac: text('mac').notNull(),
  ip: text('ip').notNull(),
  config: jsonb('config').$type<Record<string, unknown>>().notNull(),
});

export const vmMetrics = pgTable(
  'vm_metrics',
  {
    vmId: uuid('vm_id').notNull(),
    at: tz('at').notNull(),
    resolution: text('resolution').$type<'raw' | '5m'>().notNull(),
    samples: integer('samples').notNull(),
    hostCpuPct: doublePrecision('host_cpu_pct'),
    guestCpuPct: doublePrecision('guest_cpu_pct'),
    rssBytes: bigint('rss_bytes', { mode: 'number' }),
    memUsedBytes: bigint('mem_used_bytes', { mode: 'number' }),
    memTotalBytes: bigint('mem_total_bytes', { mode: 'number' }),
    diskReadBytes: bigint('disk_read_bytes', { mode: 'number' }),
    diskWriteBytes: bigint('disk_write_bytes', { mode: 'number' }),
    netRxBytes: bigint('net_rx_bytes', { mode: 'number' }),
    netTxBytes: bigint('net_tx_bytes', { mode: 'number' }),
    guestHealth: text('guest_health').$type<'healthy' | 'unhealthy' | 'unreachable' | 'not_installed'>(),
  },
  (t) => [primaryKey({ columns: [t.vmId, t.resolution, t.at] })],
);

export type OperationState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const operations = pgTable('operations', {
  id: uuid('id').primaryKey().defaultRandom(),
  seq: bigserial('seq', { mode: 'number' }).notNull(),
  kind: text('kind').notNull(),
  vmId: uuid('vm_id'),
  step: text('step').notNull(),
  state: text('state').$type<OperationState>().notNull(),
  input: jsonb('input').$type<Record<string, unknown>>().notNull(),
  actor: text('actor').notNull(),
  attempts: integer('attempts').notNull(),
  runAfter: tz('run_after').notNull(),
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: tz('lease_expires_at'),
  error: text('error'),
  reason: text('reason'),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
  finishedAt: tz('finished_at'),
});
