import { EventEmitter } from 'node:events';
import type { Event } from '@nqvm/api';
import type { ChangeFeed } from '../../db/changes.ts';
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

/** How many recently delivered event ids are remembered, so one seen twice (locally and by NOTIFY) goes out once. */
const REMEMBERED = 10_000;
const BATCH = 500;

/**
 * Every mutation writes one of these; live subscribers get it at once — events this manager records directly, and
 * events any manager writes (or this one writes in a transaction elsewhere) through the change feed (NOTIFY).
 */
export class EventsService {
  private readonly bus = new EventEmitter();
  private readonly delivered = new Set<string>();
  private newest = 0n;
  private fetching: Promise<void> = Promise.resolve();

  constructor(private readonly repo: EventsRepository) {
    this.bus.setMaxListeners(0);
  }

  /** Delivers the events other writers add, as the feed announces them; after a gap in the feed, catches up. */
  follow(feed: ChangeFeed, log?: { warn(o: object, msg: string): void }): () => void {
    let wasDown = false;
    const fetch = (first: bigint, last: bigint) => {
      this.fetching = this.fetching
        .then(() => this.fetchRange(first, last))
        .catch((err) => log?.warn({ err }, 'could not read announced events'));
    };
    const unsubscribe = feed.subscribe((c) => {
      if (!('first' in c)) return;
      if (c.last > this.newest) this.newest = c.last;
      if (this.bus.listenerCount('event') === 0) return;
      for (let id = c.first; id <= c.last; id++) if (!this.delivered.has(id.toString())) return fetch(c.first, c.last);
    });
    const unlive = feed.onLive((live) => {
      if (!live) wasDown = true;
      else if (wasDown && this.bus.listenerCount('event') > 0) fetch(this.newest + 1n, -1n);
    });
    return () => {
      unsubscribe();
      unlive();
    };
  }

  /** Events with ids in [first, last] (to the newest when last is -1), in batches, each delivered once. */
  private async fetchRange(first: bigint, last: bigint): Promise<void> {
    for (let from = first - 1n; ; ) {
      const rows = await this.repo.listAfter({}, from, BATCH);
      for (const r of rows) if (last < 0n || r.id <= last) this.deliver(toEvent(r));
      const end = rows[rows.length - 1]?.id;
      if (rows.length < BATCH || end === undefined || (last >= 0n && end >= last)) return;
      from = end;
    }
  }

  private deliver(event: Event): void {
    if (this.delivered.has(event.id)) return;
    this.delivered.add(event.id);
    if (this.delivered.size > REMEMBERED) this.delivered.delete(this.delivered.values().next().value as string);
    const id = BigInt(event.id);
    if (id > this.newest) this.newest = id;
    this.bus.emit('event', event);
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
    this.deliver(event);
    return event;
  }

  /** Tells live subscribers about an event already written (in another feature's transaction). */
  publish(event: Event): void {
    this.deliver(event);
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

  /** Whether an event is about a resource of these projects (null: every project's, a global admin's view). */
  async visibleIn(e: Event, projects: string[] | null): Promise<boolean> {
    return projects === null || this.repo.inProjects(e.id, projects);
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
