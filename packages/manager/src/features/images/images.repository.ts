import { and, eq, ilike, lt, ne, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { isoMs, type JsonPage, jsonPage } from '../../db/keyset.ts';
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

export class ImagesRepository {
  constructor(private readonly db: Db) {}

  /** Throws the driver error on a duplicate name (SQLSTATE 23505); the service maps it. */
  async insert(img: NewImage): Promise<ImageRow> {
    const [row] = await this.db
      .insert(images)
      .values({ ...img, state: 'importing', bytesDone: 0 })
      .returning();
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

  /** One page by name (unique) after `afterName`, as the API's Image JSON (see toImage), in one query. */
  listJson(f: ImageFilter, limit: number, afterName?: string): Promise<JsonPage> {
    return jsonPage(this.db, {
      table: 'images',
      where: this.where(f),
      keys: [{ column: 'name', kind: 'text' }],
      dir: 'asc',
      limit,
      after: afterName === undefined ? undefined : [afterName],
      item: sql`json_build_object(
        'id', v.id, 'name', v.name, 'kind', v.kind, 'description', v.description, 'state', v.state,
        'sha256', v.sha256, 'size_bytes', v.size_bytes, 'bytes_done', v.bytes_done, 'bytes_total', v.bytes_total,
        'source', v.source, 'created_at', ${isoMs(sql`v.created_at`)}, 'updated_at', ${isoMs(sql`v.updated_at`)})`,
    });
  }

  private where(f: ImageFilter): SQL[] {
    const w: SQL[] = [];
    if (f.kind) w.push(eq(images.kind, f.kind));
    if (f.state) w.push(eq(images.state, f.state));
    if (f.q) w.push(ilike(images.name, `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
    return w;
  }

  async progress(id: string, bytesDone: number, bytesTotal?: number | null): Promise<void> {
    await this.db
      .update(images)
      .set({ bytesDone, ...(bytesTotal !== undefined ? { bytesTotal } : {}), updatedAt: new Date() })
      .where(and(eq(images.id, id), eq(images.state, 'importing')));
  }

  async markReady(id: string, sha256: string, size: number): Promise<ImageRow | undefined> {
    const [row] = await this.db
      .update(images)
      .set({ state: 'ready', sha256, sizeBytes: size, bytesDone: size, bytesTotal: size, updatedAt: new Date() })
      .where(and(eq(images.id, id), eq(images.state, 'importing')))
      .returning();
    return row;
  }

  /** Throws the driver error on a duplicate name (SQLSTATE 23505). */
  async update(id: string, set: { name?: string; description?: string }): Promise<ImageRow | undefined> {
    const [row] = await this.db
      .update(images)
      .set({ ...set, updatedAt: new Date() })
      .where(eq(images.id, id))
      .returning();
    return row;
  }

  /** Throws the driver error (SQLSTATE 23503) while a template still references the image. */
  async delete(id: string): Promise<ImageRow | undefined> {
    const [row] = await this.db.delete(images).where(eq(images.id, id)).returning();
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
    return this.db
      .delete(images)
      .where(and(eq(images.state, 'importing'), lt(images.updatedAt, before)))
      .returning();
  }
}
