import { EventEmitter } from 'node:events';
import type { Event } from '@nqvm/api';
import { pageBody } from '../../db/keyset.ts';
import { BadRequest } from '../../domain/errors.ts';
import type { EventFilter, EventRow, EventsRepository, NewEvent } from './events.repository.ts';

export function toEvent(r: EventRow): Event {
  return {
    id: r.id.toString(),
    at: r.at.toISOString(),
    actor: r.actor,
    resource_type: r.resourceType,
    resource_id: r.resourceId,
    action: r.action,
    result: r.result,
    detail: r.detail,
  };
}

export interface RecordEvent {
  actor: string;
  resourceType: string;
  resourceId?: string | null;
  action: string;
  result?: 'ok' | 'error' | 'info';
  detail?: Record<string, unknown>;
}

/** Every mutation writes one of these; live subscribers get it at once. */
export class EventsService {
  private readonly bus = new EventEmitter();
  constructor(private readonly repo: EventsRepository) {
    this.bus.setMaxListeners(0);
  }

  async record(e: RecordEvent): Promise<Event> {
    const row: NewEvent = {
      actor: e.actor,
      resourceType: e.resourceType,
      resourceId: e.resourceId ?? null,
      action: e.action,
      result: e.result ?? 'ok',
      detail: e.detail ?? {},
    };
    const event = toEvent(await this.repo.insert(row));
    this.bus.emit('event', event);
    return event;
  }

  /** One page, newest first, as JSON text (`{items, next_cursor}`) rendered by the database; the cursor is an id. */
  async listJson(f: EventFilter, limit: number, cursor?: string): Promise<string> {
    const before = cursor === undefined ? undefined : parseCursor(cursor, 'query.cursor').toString();
    const page = await this.repo.listJson(f, limit, before);
    return pageBody(page.items, page.next?.[0] ?? null);
  }

  async after(f: EventFilter, after: string, limit = 500): Promise<Event[]> {
    return (await this.repo.listAfter(f, parseCursor(after, 'query.after'), limit)).map(toEvent);
  }

  subscribe(fn: (e: Event) => void): () => void {
    this.bus.on('event', fn);
    return () => this.bus.off('event', fn);
  }
}

function parseCursor(c: string, field: string): bigint {
  if (!/^[0-9]{1,19}$/.test(c)) throw new BadRequest('invalid_cursor', 'cursor is not valid', field);
  return BigInt(c);
}
