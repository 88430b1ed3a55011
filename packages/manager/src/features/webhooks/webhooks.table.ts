import { bigint, bigserial, boolean, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

// Mirrors migrations/0014_webhooks.sql (the migration is the source of truth for DDL).
const tz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const webhooks = pgTable('webhooks', {
  id: uuid('id').primaryKey().defaultRandom(),
  seq: bigserial('seq', { mode: 'bigint' }).notNull(),
  url: text('url').notNull(),
  description: text('description').notNull(),
  events: text('events').array().notNull(),
  secretEnc: text('secret_enc').notNull(),
  enabled: boolean('enabled').notNull(),
  createdAt: tz('created_at').notNull().defaultNow(),
  updatedAt: tz('updated_at').notNull().defaultNow(),
});

export type DeliveryStateValue = 'pending' | 'delivering' | 'succeeded' | 'failed';

export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: uuid('id').primaryKey().defaultRandom(),
  seq: bigserial('seq', { mode: 'bigint' }).notNull(),
  webhookId: uuid('webhook_id').notNull(),
  eventId: bigint('event_id', { mode: 'bigint' }).notNull(),
  eventType: text('event_type').notNull(),
  state: text('state').$type<DeliveryStateValue>().notNull(),
  attempts: integer('attempts').notNull(),
  nextAttemptAt: tz('next_attempt_at'),
  leaseOwner: text('lease_owner'),
  leaseExpiresAt: tz('lease_expires_at'),
  responseCode: integer('response_code'),
  lastError: text('last_error'),
  createdAt: tz('created_at').notNull().defaultNow(),
  deliveredAt: tz('delivered_at'),
});
