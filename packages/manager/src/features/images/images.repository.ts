import { and, eq, gt, ilike, lt, ne, type SQL, sql } from 'drizzle-orm';
import { ChangeCache } from '../../db/change-cache.ts';
import type { Db } from '../../db/client.ts';
import { images } from '../../db/schema.ts';

export type ImageRow = typeof images.$inferSelect;
export type NewImage = Pick<typeof images.$inferInsert, 'name' | 'kind' | 'description' | 'source' | 'bytesTotal'>;

export interface ImageFilter {
  kind?: ImageRow['kind'];
  state?: ImageRow['state'];
  q?: string;
}

/** The SQLSTATE of a database error, whether the driver or Drizzle's wrapper carries it. */
export function pgCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as never, i++)
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  return undefined;
}

/** The NOTIFY channel the images table's trigger (migration 0007) signals on every change. */
export const IMAGES_CHANGED = 'nqvm_images_changed';

export interface ImagePage {
  items: string;
  last: string | null;
  more: boolean;
}

export class ImagesRepository {
  /** List pages, served from memory while a change feed (see followChanges) keeps them current. */
  readonly pages = new ChangeCache<ImagePage>();

  constructor(private readonly db: Db) {}

  /** Runs a write, then drops cached pages at once so this manager reads its own writes. */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } finally {
      this.pages.invalidate();
    }
  }

  /** Throws the driver error on a duplicate name (SQLSTATE 23505); the service maps it. */
  async insert(img: NewImage): Promise<ImageRow> {
    const [row] = await this.write(() =>
      this.db
        .insert(images)
        .values({ ...img, state: 'importing', bytesDone: 0 })
        .returning(),
    );
    return row!;
  }

  async get(id: string): Promise<ImageRow | undefined> {
    const [row] = await this.db.select().from(images).where(eq(images.id, id));
    return row;
  }

  async getMany(ids: string[]): Promise<ImageRow[]> {
    if (ids.length === 0) return [];
    return this.db.select().from(images).where(sql`${images.id} in ${ids}`);
  }

  /**
   * One page, ordered by name (unique) after `afterName`, as JSON text built by the database, in the shape of the API's Image (see toImage), so a list
   * costs the manager one round trip and no per-row work.
   */
  async listJson(f: ImageFilter, limit: number, afterName?: string): Promise<ImagePage> {
    const key = JSON.stringify([f.kind, f.state, f.q, limit, afterName]);
    const cached = this.pages.get(key);
    if (cached) return cached;
    const generation = this.pages.generation;
    const w = this.where(f);
    if (afterName !== undefined) w.push(gt(images.name, afterName));
    const iso = (c: SQL) => sql`to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
    const query = sql`
      WITH page AS (
        SELECT * FROM ${images} WHERE ${and(...w) ?? sql`true`} ORDER BY ${images.name} LIMIT ${limit + 1}
      ), shown AS (SELECT * FROM page ORDER BY name LIMIT ${limit})
      SELECT (SELECT count(*) FROM page)::int AS n, (SELECT max(name) FROM shown) AS last,
        coalesce((SELECT json_agg(json_build_object(
          'id', id, 'name', name, 'kind', kind, 'description', description, 'state', state, 'sha256', sha256,
          'size_bytes', size_bytes, 'bytes_done', bytes_done, 'bytes_total', bytes_total, 'source', source,
          'created_at', ${iso(sql`created_at`)}, 'updated_at', ${iso(sql`updated_at`)}) ORDER BY name) FROM shown), '[]')::text AS items`;
    const res = (await this.db.execute(query)) as unknown as {
      rows: { n: number; last: string | null; items: string }[];
    };
    const row = res.rows[0]!;
    const page = { items: row.items, last: row.last, more: row.n > limit };
    this.pages.put(key, generation, page);
    return page;
  }

  private where(f: ImageFilter): SQL[] {
    const w: SQL[] = [];
    if (f.kind) w.push(eq(images.kind, f.kind));
    if (f.state) w.push(eq(images.state, f.state));
    if (f.q) w.push(ilike(images.name, `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
    return w;
  }

  async progress(id: string, bytesDone: number, bytesTotal?: number | null): Promise<void> {
    await this.write(() =>
      this.db
        .update(images)
        .set({ bytesDone, ...(bytesTotal !== undefined ? { bytesTotal } : {}), updatedAt: new Date() })
        .where(and(eq(images.id, id), eq(images.state, 'importing'))),
    );
  }

  async markReady(id: string, sha256: string, size: number): Promise<ImageRow | undefined> {
    const [row] = await this.write(() =>
      this.db
        .update(images)
        .set({ state: 'ready', sha256, sizeBytes: size, bytesDone: size, bytesTotal: size, updatedAt: new Date() })
        .where(and(eq(images.id, id), eq(images.state, 'importing')))
        .returning(),
    );
    return row;
  }

  /** Throws the driver error on a duplicate name (SQLSTATE 23505). */
  async update(id: string, set: { name?: string; description?: string }): Promise<ImageRow | undefined> {
    const [row] = await this.write(() =>
      this.db
        .update(images)
        .set({ ...set, updatedAt: new Date() })
        .where(eq(images.id, id))
        .returning(),
    );
    return row;
  }

  /** Throws the driver error (SQLSTATE 23503) while a template still references the image. */
  async delete(id: string): Promise<ImageRow | undefined> {
    const [row] = await this.write(() => this.db.delete(images).where(eq(images.id, id)).returning());
    return row;
  }

  async shaInUse(sha256: string, exceptId?: string): Promise<boolean> {
    const w = [eq(images.sha256, sha256)];
    if (exceptId) w.push(ne(images.id, exceptId));
    const rows = await this.db
      .select({ id: images.id })
      .from(images)
      .where(and(...w))
      .limit(1);
    return rows.length > 0;
  }

  /** Imports that no live process is driving: still importing and untouched since `before`. */
  async deleteStaleImports(before: Date): Promise<ImageRow[]> {
    return this.write(() =>
      this.db
        .delete(images)
        .where(and(eq(images.state, 'importing'), lt(images.updatedAt, before)))
        .returning(),
    );
  }
}
