import { and, desc, eq, gt, ilike, lt, ne, or, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { isoMs, type JsonPage, jsonPage, type Key } from '../../db/keyset.ts';
import { images } from '../../db/schema.ts';
import { inProjects } from '../../http/scope.ts';
import type { Tx } from '../operations/operations.repository.ts';

export type ImageRow = typeof images.$inferSelect;
export type NewImage = Pick<
  typeof images.$inferInsert,
  'name' | 'kind' | 'description' | 'source' | 'bytesTotal' | 'tag' | 'projectId' | 'public'
>;

export interface ImageFilter {
  kind?: ImageRow['kind'];
  state?: ImageRow['state'];
  q?: string;
  name?: string;
  latest?: boolean;
  projectId?: string;
  /** Only these projects' and public ones (null: all). */
  projects?: string[] | null;
}

/** The SQLSTATE of a database error, whether the driver or Drizzle's wrapper carries it. */
export function pgCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 4; e = e.cause as never, i++)
    if (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  return undefined;
}

/** The constraint a database error names (which unique index a duplicate hit). */
export function pgConstraint(err: unknown): string | undefined {
  for (
    let e = err as { constraint?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 4;
    e = e.cause as never, i++
  )
    if (typeof e.constraint === 'string') return e.constraint;
  return undefined;
}

/** Images list by name, then version: the index on (name, version) serves the pages. */
export const IMAGE_KEYS: Key[] = [
  { column: 'name', kind: 'text' },
  { column: 'version', kind: 'bigint' },
];

export class ImagesRepository {
  constructor(private readonly db: Db) {}

  /**
   * The name's next version. Throws the driver error (SQLSTATE 23505) on a taken tag, or on the version when
   * another import of the name took it at the same moment; the service maps or retries.
   */
  /** `check` runs in the insert's transaction (quotas); throwing undoes the insert. */
  async insert(img: NewImage, check?: (tx: Tx, row: ImageRow) => Promise<void>): Promise<ImageRow> {
    if (check)
      return this.db.transaction(async (tx) => {
        const row = await this.insertIn(tx, img);
        await check(tx, row);
        return row;
      });
    return this.insertIn(this.db, img);
  }

  private async insertIn(db: Db | Tx, img: NewImage): Promise<ImageRow> {
    const [row] = await db
      .insert(images)
      .values({
        ...img,
        state: 'importing',
        bytesDone: 0,
        latest: false,
        version: sql`(SELECT coalesce(max(i.version), 0) + 1 FROM images i WHERE i.name = ${img.name})`,
      })
      .returning();
    return row!;
  }

  /** The kind of the versions of `name`, if it has any. */
  async projectOf(name: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ projectId: images.projectId })
      .from(images)
      .where(eq(images.name, name))
      .limit(1);
    return row?.projectId;
  }

  async kindOf(name: string): Promise<ImageRow['kind'] | undefined> {
    const [row] = await this.db.select({ kind: images.kind }).from(images).where(eq(images.name, name)).limit(1);
    return row?.kind;
  }

  /** Makes `id` the version its name resolves to, in one transaction with the rows of the name locked. */
  async setLatest(id: string): Promise<ImageRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx.select().from(images).where(eq(images.id, id)).for('update');
      if (row?.state !== 'ready') return undefined;
      await tx.select({ id: images.id }).from(images).where(eq(images.name, row.name)).for('update');
      await tx
        .update(images)
        .set({ latest: false })
        .where(and(eq(images.name, row.name), eq(images.latest, true)));
      const [now] = await tx.update(images).set({ latest: true }).where(eq(images.id, id)).returning();
      return now;
    });
  }

  /** The version `name` resolves to, if any. */
  async latestOf(name: string): Promise<ImageRow | undefined> {
    const [row] = await this.db
      .select()
      .from(images)
      .where(and(eq(images.name, name), eq(images.latest, true)));
    return row;
  }

  /** A version of `name` by its tag or its number; `latestOf` when neither is asked for. */
  async version(name: string, sel: { tag?: string; version?: number }): Promise<ImageRow | undefined> {
    if (sel.tag === undefined && sel.version === undefined) return this.latestOf(name);
    const [row] = await this.db
      .select()
      .from(images)
      .where(
        and(
          eq(images.name, name),
          sel.tag !== undefined ? eq(images.tag, sel.tag) : eq(images.version, sel.version ?? 0),
        ),
      );
    return row;
  }

  /** The newest ready version of `name`, if any (where `latest` falls back to when the latest is deleted). */
  async newestReady(name: string): Promise<ImageRow | undefined> {
    const [row] = await this.db
      .select()
      .from(images)
      .where(and(eq(images.name, name), eq(images.state, 'ready')))
      .orderBy(desc(images.version))
      .limit(1);
    return row;
  }

  /** Renames every version of the image's name; false when another image already has the new name. */
  async renameAll(from: string, to: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [other] = await tx.select({ id: images.id }).from(images).where(eq(images.name, to)).limit(1);
      if (other) return false;
      await tx.update(images).set({ name: to, updatedAt: new Date() }).where(eq(images.name, from));
      return true;
    });
  }

  async get(id: string): Promise<ImageRow | undefined> {
    const [row] = await this.db.select().from(images).where(eq(images.id, id));
    return row;
  }

  async getMany(ids: string[]): Promise<ImageRow[]> {
    if (ids.length === 0) return [];
    return this.db.select().from(images).where(sql`${images.id} in ${ids}`);
  }

  /** One page by name and version (unique together) after `after`, as the API's Image JSON (see toImage), in one query. */
  listJson(f: ImageFilter, limit: number, after?: string[]): Promise<JsonPage> {
    return jsonPage(this.db, {
      table: 'images',
      where: this.where(f),
      keys: IMAGE_KEYS,
      dir: 'asc',
      limit,
      after,
      item: sql`json_build_object(
        'id', v.id, 'name', v.name, 'version', v.version, 'tag', v.tag, 'latest', v.latest,
        'kind', v.kind, 'description', v.description, 'project_id', v.project_id, 'public', v.public,
        'state', v.state,
        'sha256', v.sha256, 'size_bytes', v.size_bytes, 'bytes_done', v.bytes_done, 'bytes_total', v.bytes_total,
        'source', v.source, 'created_at', ${isoMs(sql`v.created_at`)}, 'updated_at', ${isoMs(sql`v.updated_at`)})`,
    });
  }

  private where(f: ImageFilter): SQL[] {
    const w: SQL[] = [];
    if (f.kind) w.push(eq(images.kind, f.kind));
    if (f.state) w.push(eq(images.state, f.state));
    if (f.name !== undefined) w.push(eq(images.name, f.name));
    if (f.latest !== undefined) w.push(eq(images.latest, f.latest));
    if (f.projectId) w.push(eq(images.projectId, f.projectId));
    if (f.projects) w.push(or(inProjects(images.projectId, f.projects), eq(images.public, true))!);
    if (f.q) w.push(ilike(images.name, `%${f.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`));
    return w;
  }

  async progress(id: string, bytesDone: number, bytesTotal?: number | null): Promise<void> {
    await this.db
      .update(images)
      .set({ bytesDone, ...(bytesTotal !== undefined ? { bytesTotal } : {}), updatedAt: new Date() })
      .where(and(eq(images.id, id), eq(images.state, 'importing')));
  }

  /** Ready, and `latest` of its name unless a newer version is already ready (imports may finish out of order). */
  async markReady(id: string, sha256: string, size: number): Promise<ImageRow | undefined> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .update(images)
        .set({ state: 'ready', sha256, sizeBytes: size, bytesDone: size, bytesTotal: size, updatedAt: new Date() })
        .where(and(eq(images.id, id), eq(images.state, 'importing')))
        .returning();
      if (!row) return undefined;
      await tx.select({ id: images.id }).from(images).where(eq(images.name, row.name)).for('update');
      const [newer] = await tx
        .select({ id: images.id })
        .from(images)
        .where(and(eq(images.name, row.name), eq(images.state, 'ready'), gt(images.version, row.version)))
        .limit(1);
      if (newer) return row;
      await tx
        .update(images)
        .set({ latest: false })
        .where(and(eq(images.name, row.name), eq(images.latest, true)));
      const [latest] = await tx.update(images).set({ latest: true }).where(eq(images.id, id)).returning();
      return latest;
    });
  }

  async update(id: string, set: { description?: string; public?: boolean }): Promise<ImageRow | undefined> {
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
