import { randomBytes } from 'node:crypto';
import type { CreatedWebhook, DeliveryState, Webhook, WebhookDelivery, WebhookPatch, WebhookRequest } from '@nqvm/api';
import { BadRequest, NotFound } from '../../domain/errors.ts';
import type { SecretBox } from '../../security/secret-box.ts';
import type { UrlGuard } from '../../security/url-guard.ts';
import type { EventsService } from '../events/events.service.ts';
import type { DeliveryRow, WebhookRow, WebhooksRepository } from './webhooks.repository.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function toWebhook(r: WebhookRow): Webhook {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    events: r.events,
    enabled: r.enabled,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

function toDelivery(r: DeliveryRow): WebhookDelivery {
  return {
    id: r.id,
    webhook_id: r.webhookId,
    event_id: r.eventId.toString(),
    event_type: r.eventType,
    state: r.state,
    attempts: r.attempts,
    response_code: r.responseCode,
    last_error: r.lastError,
    next_attempt_at: r.state === 'pending' ? iso(r.nextAttemptAt) : null,
    created_at: r.createdAt.toISOString(),
    delivered_at: iso(r.deliveredAt),
  };
}

/** A page cursor: the last row's sequence number. */
function seqCursor(cursor: string | undefined): bigint | undefined {
  if (cursor === undefined) return undefined;
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[0-9]{1,19}$/.test(raw)) throw new BadRequest('invalid_cursor', 'cursor is not valid', 'query.cursor');
  return BigInt(raw);
}
const cursorOf = (seq: bigint) => Buffer.from(seq.toString()).toString('base64url');

export class WebhooksService {
  constructor(
    private readonly repo: WebhooksRepository,
    private readonly secrets: SecretBox,
    private readonly guard: UrlGuard,
    private readonly events: EventsService,
  ) {}

  /** The URL's form and every address it resolves to now: refused early, and again at every delivery. */
  private async checkUrl(raw: string): Promise<string> {
    const url = this.guard.parse(raw, 'body.url');
    await this.guard.check(url, 'body.url');
    return url.href;
  }

  async list(limit: number, cursor?: string): Promise<{ items: Webhook[]; next_cursor: string | null }> {
    const rows = await this.repo.list(limit + 1, seqCursor(cursor));
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(toWebhook), next_cursor: rows.length > limit && last ? cursorOf(last.seq) : null };
  }

  async get(id: string): Promise<Webhook> {
    return toWebhook(await this.row(id));
  }

  private async row(id: string): Promise<WebhookRow> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('webhook', id);
    return row;
  }

  async create(req: WebhookRequest, actor: string): Promise<CreatedWebhook> {
    const url = await this.checkUrl(req.url);
    const secret = req.secret ?? `whsec_${randomBytes(24).toString('base64url')}`;
    const row = await this.repo.insert({
      url,
      description: req.description ?? '',
      events: req.events ?? ['*'],
      secretEnc: this.secrets.seal(secret),
      enabled: req.enabled ?? true,
    });
    await this.events.record({
      actor,
      resourceType: 'webhook',
      resourceId: row.id,
      action: 'create',
      detail: { url: row.url, events: row.events },
    });
    return { ...toWebhook(row), secret };
  }

  async update(id: string, patch: WebhookPatch, actor: string): Promise<Webhook> {
    await this.row(id);
    const row = await this.repo.update(id, {
      ...(patch.url !== undefined ? { url: await this.checkUrl(patch.url) } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      ...(patch.events !== undefined ? { events: patch.events } : {}),
      ...(patch.secret !== undefined ? { secretEnc: this.secrets.seal(patch.secret) } : {}),
      ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
    });
    if (!row) throw new NotFound('webhook', id);
    await this.events.record({
      actor,
      resourceType: 'webhook',
      resourceId: id,
      action: 'update',
      detail: { fields: Object.keys(patch) },
    });
    return toWebhook(row);
  }

  async delete(id: string, actor: string): Promise<void> {
    if (!(await this.repo.delete(id))) throw new NotFound('webhook', id);
    await this.events.record({ actor, resourceType: 'webhook', resourceId: id, action: 'delete' });
  }

  async deliveries(
    id: string,
    q: { limit?: number; cursor?: string; state?: DeliveryState },
  ): Promise<{ items: WebhookDelivery[]; next_cursor: string | null }> {
    await this.row(id);
    const limit = q.limit ?? 50;
    const rows = await this.repo.deliveries(id, limit + 1, seqCursor(q.cursor), q.state);
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(toDelivery), next_cursor: rows.length > limit && last ? cursorOf(last.seq) : null };
  }
}
