import type { AlertMetric, AlertRuleKind } from '@nqvm/api';
import {
  bigint,
  bigserial,
  boolean,
  doublePrecision,
  integer,
  pgTable,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';

// Mirrors migrations/0017_alerts.sql (the migration is the source of truth for DDL).
const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const alertRules = pgTable('alert_rules', {
  id: uuid('id').primaryKey().defaultRandom(),
  seq: bigserial('seq', { mode: 'bigint' }).notNull(),
  name: text('name').notNull(),
  description: text('description').notNull(),
  kind: text('kind').$type<AlertRuleKind>().notNull(),
  vmId: uuid('vm_id'),
  hostId: uuid('host_id'),
  projectId: uuid('project_id'),
  metric: text('metric').$type<AlertMetric>(),
  threshold: doublePrecision('threshold'),
  durationS: integer('duration_s'),
  enabled: boolean('enabled').notNull(),
  eventCursor: bigint('event_cursor', { mode: 'bigint' }).notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

export const alerts = pgTable('alerts', {
  id: uuid('id').primaryKey().defaultRandom(),
  ruleId: uuid('rule_id').notNull(),
  subjectType: text('subject_type').$type<'vm' | 'host' | 'project'>().notNull(),
  subjectId: uuid('subject_id').notNull(),
  subjectName: text('subject_name').notNull(),
  state: text('state').$type<'firing' | 'resolved'>().notNull(),
  reason: text('reason').notNull(),
  firedAt: tz('fired_at').notNull().defaultNow(),
  resolvedAt: tz('resolved_at'),
});
