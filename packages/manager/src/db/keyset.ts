import { type SQL, sql } from 'drizzle-orm';
import { BadRequest } from '../domain/errors.ts';
import type { Db } from './client.ts';

/**
 * Keyset pages built by the database: one query reads the page's rows through the index that ends in the sort
 * keys and renders them as JSON text, so a page costs one round trip and no per-row work in the manager.
 */

export type KeyKind = 'text' | 'timestamptz' | 'uuid' | 'bigint';

export interface Key {
  /** A column of the listed table (a trusted identifier, never user input). */
  column: string;
  kind: KeyKind;
}

export interface PageQuery {
  /** The listed table (a trusted identifier). */
  table: string;
  where: SQL[];
  /** Sort keys, the last one unique (the id). */
  keys: Key[];
  dir: 'asc' | 'desc';
  limit: number;
  /** The decoded cursor: the last item's key values. */
  after?: string[];
  /** One item as a JSON value, over the page's rows aliased `v`. */
  item: SQL;
}

export interface JsonPage {
  /** A JSON array of the items. */
  items: string;
  /** The last item's key values when more items follow, else null. */
  next: string[] | null;
}

const VALID: Record<KeyKind, RegExp> = {
  text: /^[\s\S]{0,400}$/,
  timestamptz: /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/,
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  bigint: /^[0-9]{1,19}$/,
};

/** An ISO-8601 UTC timestamp with milliseconds, as `Date.toISOString()` writes it. */
export const isoMs = (c: SQL): SQL => sql`to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
// Cursors keep the database's microseconds: a millisecond value would skip rows within the same millisecond.
export const isoUs = (c: SQL): SQL => sql`to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const col = (k: Key, alias?: string) => sql.raw(alias ? `${alias}.${k.column}` : k.column);
const asText = (k: Key) => (k.kind === 'timestamptz' ? isoUs(col(k)) : sql`${col(k)}::text`);
const typed = (k: Key, v: string) => sql`${v}::${sql.raw(k.kind)}`;

/** An opaque cursor for the given key values. */
export function encodeCursor(values: string[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** The key values of a cursor made by encodeCursor for these keys; a 400 `invalid_cursor` otherwise. */
export function decodeCursor(cursor: string, keys: Key[], field = 'query.cursor'): string[] {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {}
  if (
    !Array.isArray(v) ||
    v.length !== keys.length ||
    !v.every((x, i) => typeof x === 'string' && VALID[keys[i]!.kind].test(x))
  )
    throw new BadRequest('invalid_cursor', 'cursor is not valid', field);
  return v as string[];
}

function order(keys: Key[], dir: 'asc' | 'desc', alias?: string): SQL {
  const d = sql.raw(dir === 'asc' ? 'ASC' : 'DESC');
  return sql.join(
    keys.map((k) => sql`${col(k, alias)} ${d}`),
    sql`, `,
  );
}

/** One page of `q.table` in one query: the rows after the cursor through the sort index, rendered as JSON. */
export async function jsonPage(db: Db, q: PageQuery): Promise<JsonPage> {
  const where = [...q.where];
  if (q.after) {
    const cols = sql.join(
      q.keys.map((k) => col(k)),
      sql`, `,
    );
    const vals = sql.join(
      q.keys.map((k, i) => typed(k, q.after![i]!)),
      sql`, `,
    );
    where.push(q.dir === 'asc' ? sql`(${cols}) > (${vals})` : sql`(${cols}) < (${vals})`);
  }
  const cond = where.length ? sql.join(where, sql` AND `) : sql`true`;
  const reverse = q.dir === 'asc' ? 'desc' : 'asc';
  const lastKeys = sql.join(q.keys.map(asText), sql`, `);
  const res = (await db.execute(sql`
    WITH page AS (
      SELECT * FROM ${sql.raw(q.table)} WHERE ${cond} ORDER BY ${order(q.keys, q.dir)} LIMIT ${q.limit + 1}
    ), shown AS (SELECT * FROM page ORDER BY ${order(q.keys, q.dir)} LIMIT ${q.limit})
    SELECT (SELECT count(*) FROM page)::int AS n,
      (SELECT json_build_array(${lastKeys})::text FROM shown ORDER BY ${order(q.keys, reverse)} LIMIT 1) AS last,
      coalesce((SELECT json_agg(${q.item} ORDER BY ${order(q.keys, q.dir, 'v')}) FROM shown v), '[]')::text AS items
  `)) as unknown as { rows: { n: number; last: string | null; items: string }[] };
  const row = res.rows[0]!;
  return { items: row.items, next: row.n > q.limit && row.last ? (JSON.parse(row.last) as string[]) : null };
}

/** The API's page body, `{"items": [...], "next_cursor": ...}`, from a page and its cursor. */
export function pageBody(items: string, nextCursor: string | null): string {
  return `{"items":${items},"next_cursor":${JSON.stringify(nextCursor)}}`;
}
