import { and, desc, eq, gt, inArray, lt, lte, or, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { events } from '../../db/schema.ts';
import { type DeliveryStateValue, webhookDeliveries, webhooks } from './webhooks.table.ts';

export type WebhookRow = typeof webhooks.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type EventRow = typeof events.$inferSelect;

export interface NewWebhook {
  url: string;
  description: string;
  events: string[];
  secretEnc: string;
  enabled: boolean;
}

/** How an attempt ended, written only while its claimer still holds the lease. */
export type AttemptResult =
  | { state: 'succeeded'; responseCode: number }
  | { state: 'pending'; responseCode: number | null; error: string; nextAttemptAt: Date }
  | { state: 'failed'; responseCode: number | null; error: string };

/** What the deliverer needs of the tables; an interface so its unit tests can pass a fake. */
export interface DeliveryStore {
  claim(owner: string, leaseUntil: Date, limit: number): Promise<DeliveryRow[]>;
  target(delivery: DeliveryRow): Promise<{ webhook: WebhookRow; event: EventRow } | undefined>;
  settle(id: string, owner: string, result: AttemptResult): Promise<boolean>;
}

export class WebhooksRepository implements DeliveryStore {
  constructor(private readonly db: Db) {}

  async insert(w: NewWebhook): Promise<WebhookRow> {
    const [row] = await this.db.insert(webhooks).values(w).returning();
    return row!;
  }

  async get(id: string): Promise<WebhookRow | undefined> {
    const [row] = await this.db.select().from(webhooks).where(eq(webhooks.id, id));
    return row;
  }

  async list(limit: number, afterSeq?: bigint): Promise<WebhookRow[]> {
    return this.db
      .select()
      .from(webhooks)
      .where(afterSeq === undefined ? undefined : gt(webhooks.seq, afterSeq))
      .orderBy(webhooks.seq)
      .limit(limit);
  }

  async update(id: string, patch: Partial<NewWebhook>): Promise<WebhookRow | undefined> {
    const [row] = await this.db
      .update(webhooks)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(webhooks.id, id))
      .returning();
    return row;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.delete(webhooks).where(eq(webhooks.id, id)).returning({ id: webhooks.id })).length > 0;
  }

  async deliveries(webhookId: string, limit: number, beforeSeq?: bigint, state?: DeliveryStateValue) {
    return this.db
      .select()
      .from(webhookDeliveries)
      .where(
        and(
          eq(webhookDeliveries.webhookId, webhookId),
          beforeSeq === undefined ? undefined : lt(webhookDeliveries.seq, beforeSeq),
          state === undefined ? undefined : eq(webhookDeliveries.state, state),
        ),
      )
      .orderBy(desc(webhookDeliveries.seq))
      .limit(limit);
  }

  /**
   * Takes due deliveries under a lease: pending ones whose backoff has passed and delivering ones whose claimer's
   * lease ran out (it died mid-attempt). Rows another manager is claiming right now are skipped, not waited for.
   */
  async claim(owner: string, leaseUntil: Date, limit: number): Promise<DeliveryRow[]> {
    const due = or(
      and(eq(webhookDeliveries.state, 'pending'), lte(webhookDeliveries.nextAttemptAt, sql`now()`)),
      and(eq(webhookDeliveries.state, 'delivering'), lt(webhookDeliveries.leaseExpiresAt, sql`now()`)),
    );
    const ids = this.db
      .select({ id: webhookDeliveries.id })
      .from(webhookDeliveries)
      .where(due)
      .orderBy(webhookDeliveries.seq)
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(webhookDeliveries)
      .set({
        state: 'delivering',
        leaseOwner: owner,
        leaseExpiresAt: leaseUntil,
        attempts: sql`${webhookDeliveries.attempts} + 1`,
      })
      .where(inArray(webhookDeliveries.id, ids))
      .returning();
  }

  async target(d: DeliveryRow): Promise<{ webhook: WebhookRow; event: EventRow } | undefined> {
    const [webhook] = await this.db.select().from(webhooks).where(eq(webhooks.id, d.webhookId));
    const [event] = await this.db.select().from(events).where(eq(events.id, d.eventId));
    return webhook && event ? { webhook, event } : undefined;
  }

  async settle(id: string, owner: string, r: AttemptResult): Promise<boolean> {
    const rows = await this.db
      .update(webhookDeliveries)
      .set({
        state: r.state,
        responseCode: r.responseCode,
        lastError: r.state === 'succeeded' ? null : r.error,
        nextAttemptAt: r.state === 'pending' ? r.nextAttemptAt : null,
        deliveredAt: r.state === 'succeeded' ? sql`now()` : null,
        leaseOwner: null,
        leaseExpiresAt: null,
      })
      .where(
        and(
          eq(webhookDeliveries.id, id),
          eq(webhookDeliveries.state, 'delivering'),
          eq(webhookDeliveries.leaseOwner, owner),
        ),
      )
      .returning({ id: webhookDeliveries.id });
    return rows.length > 0;
  }

  /** An embedded database has one manager: what it was delivering when it stopped is due again at once. */
  async releaseAll(): Promise<void> {
    await this.db
      .update(webhookDeliveries)
      .set({ state: 'pending', nextAttemptAt: sql`now()`, leaseOwner: null, leaseExpiresAt: null })
      .where(eq(webhookDeliveries.state, 'delivering'));
  }
}
