import { and, eq, gt, gte, lte, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { isoMs, type JsonPage, jsonPage } from '../../db/keyset.ts';
import { events } from '../../db/schema.ts';

// Sent as text and cast in SQL: not every driver (PGlite) serialises a JS BigInt parameter.
const asBigint = (v: bigint) => sql`${v.toString()}::bigint`;

export type EventRow = typeof events.$inferSelect;
export type NewEvent = Omit<typeof events.$inferInsert, 'id' | 'at'>;

export interface EventFilter {
  resourceType?: string;
  resourceId?: string;
  action?: string;
  result?: 'ok' | 'error' | 'info';
  actor?: string;
  since?: Date;
  until?: Date;
  /** Only events about resources of these projects (null or absent: all). */
  projects?: string[] | null;
}

/** An event is about a project's resource when its resource (a VM, image, template, snapshot or the project) is. */
function inProjectsSql(ids: string[]): SQL {
  if (ids.length === 0) return sql`false`;
  const of = (table: string) =>
    sql`${events.resourceId} IN (SELECT id::text FROM ${sql.identifier(table)} WHERE project_id IN ${ids})`;
  return sql`CASE ${events.resourceType}
    WHEN 'vm' THEN ${of('vms')} WHEN 'image' THEN ${of('images')} WHEN 'template' THEN ${of('templates')}
    WHEN 'snapshot' THEN ${of('snapshots')} WHEN 'project' THEN ${events.resourceId} IN ${ids} ELSE false END`;
}

export class EventsRepository {
  constructor(private readonly db: Db) {}

  async insert(e: NewEvent): Promise<EventRow> {
    const [row] = await this.db.insert(events).values(e).returning();
    return row!;
  }

  private where(f: EventFilter): SQL[] {
    const w: SQL[] = [];
    if (f.resourceType) w.push(eq(events.resourceType, f.resourceType));
    if (f.resourceId) w.push(eq(events.resourceId, f.resourceId));
    if (f.action) w.push(eq(events.action, f.action));
    if (f.result) w.push(eq(events.result, f.result));
    if (f.actor) w.push(eq(events.actor, f.actor));
    if (f.since) w.push(gte(events.at, f.since));
    if (f.until) w.push(lte(events.at, f.until));
    if (f.projects) w.push(inProjectsSql(f.projects));
    return w;
  }

  /** Newest first, strictly older than `before` when given, as the API's Event JSON (see toEvent), in one query. */
  listJson(f: EventFilter, limit: number, before?: string): Promise<JsonPage> {
    return jsonPage(this.db, {
      table: 'events',
      where: this.where(f),
      keys: [{ column: 'id', kind: 'bigint' }],
      dir: 'desc',
      limit,
      after: before === undefined ? undefined : [before],
      item: sql`json_build_object('id', v.id::text, 'at', ${isoMs(sql`v.at`)}, 'actor', v.actor,
        'resource_type', v.resource_type, 'resource_id', v.resource_id, 'action', v.action, 'result', v.result,
        'detail', v.detail)`,
    });
  }

  /** Whether one event is about a resource of these projects. */
  async inProjects(id: string, projects: string[]): Promise<boolean> {
    const rows = await this.db
      .select({ id: events.id })
      .from(events)
      .where(and(eq(events.id, asBigint(BigInt(id))), inProjectsSql(projects)));
    return rows.length === 1;
  }

  /** Oldest first, strictly newer than `after` (the live stream's resume). */
  listAfter(f: EventFilter, after: bigint, limit: number): Promise<EventRow[]> {
    return this.db
      .select()
      .from(events)
      .where(and(...this.where(f), gt(events.id, asBigint(after))))
      .orderBy(events.id)
      .limit(limit);
  }
}
