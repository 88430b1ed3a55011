import type { QuotaRequest, QuotaResource } from '@nqvm/api';
import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import type { Tx } from '../operations/operations.repository.ts';

type Runner = Pick<Db, 'execute'> | Pick<Tx, 'execute'>;

async function rows<T>(db: Runner, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

export type Limits = Record<QuotaResource, number | null>;
export type Use = Record<QuotaResource, number>;

export interface QuotaRow extends Limits {
  rate_limit_per_token: number | null;
  rate_limit_per_user: number | null;
  updated_at: Date | null;
}

export const FIELDS = [
  'vcpus',
  'memory_mib',
  'vms',
  'running_vms',
  'disk_gib',
  'snapshots',
  'functions',
  'rate_limit_per_token',
  'rate_limit_per_user',
] as const;

const GIB = 1024 ** 3;
// Arbitrary but fixed: the first key of every project's quota lock (pg_advisory_xact_lock(int, int)).
const QUOTA_LOCK = 7_346_021;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** Quotas and what projects use, read in the caller's transaction where a check must be atomic with a write. */
export class QuotasRepository {
  constructor(private readonly db: Db) {}

  async projectExists(id: string): Promise<boolean> {
    return (await rows(this.db, sql`SELECT 1 FROM projects WHERE id = ${id}`)).length > 0;
  }

  async get(projectId: string, db: Runner = this.db): Promise<QuotaRow | undefined> {
    const [r] = await rows<Record<string, unknown>>(
      db,
      sql`SELECT * FROM project_quotas WHERE project_id = ${projectId}`,
    );
    if (!r) return undefined;
    const out = Object.fromEntries(FIELDS.map((f) => [f, num(r[f])])) as Omit<QuotaRow, 'updated_at'>;
    return { ...out, updated_at: r.updated_at ? new Date(r.updated_at as string) : null };
  }

  /** Sets the given fields (others keep their value), creating the row at first. */
  async put(projectId: string, patch: QuotaRequest): Promise<void> {
    const set = FIELDS.filter((f) => patch[f] !== undefined);
    const cols = sql.join(
      set.map((f) => sql.identifier(f)),
      sql`, `,
    );
    const vals = sql.join(
      set.map((f) => sql`${patch[f]}`),
      sql`, `,
    );
    const updates = sql.join(
      [...set.map((f) => sql`${sql.identifier(f)} = EXCLUDED.${sql.identifier(f)}`), sql`updated_at = now()`],
      sql`, `,
    );
    await this.db.execute(
      set.length
        ? sql`INSERT INTO project_quotas (project_id, ${cols}) VALUES (${projectId}, ${vals})
              ON CONFLICT (project_id) DO UPDATE SET ${updates}`
        : sql`INSERT INTO project_quotas (project_id) VALUES (${projectId}) ON CONFLICT (project_id) DO NOTHING`,
    );
  }

  /** Serializes quota checks of one project until the transaction ends. */
  async lockIn(tx: Tx, projectId: string): Promise<void> {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${QUOTA_LOCK}, hashtext(${projectId}::text))`);
  }

  async projectOf(tx: Runner, table: 'vms' | 'snapshots' | 'images', id: string): Promise<string | undefined> {
    const [r] = await rows<{ project_id: string }>(
      tx,
      sql`SELECT project_id FROM ${sql.identifier(table)} WHERE id = ${id}`,
    );
    return r?.project_id;
  }

  /** What a project uses now, as the given transaction sees it. */
  async use(projectId: string, db: Runner = this.db): Promise<Use> {
    const [r] = await rows<Record<string, string | number>>(
      db,
      sql`SELECT
        (SELECT count(*) FROM vms WHERE project_id = ${projectId}) AS vms,
        (SELECT count(*) FROM vms WHERE project_id = ${projectId} AND nqvm_vm_holds(state)) AS running_vms,
        (SELECT coalesce(sum(vcpu), 0) FROM vms WHERE project_id = ${projectId} AND nqvm_vm_holds(state)) AS vcpus,
        (SELECT coalesce(sum(mem_mib), 0) FROM vms WHERE project_id = ${projectId} AND nqvm_vm_holds(state))
          AS memory_mib,
        (SELECT count(*) FROM snapshots WHERE project_id = ${projectId}) AS snapshots,
        (SELECT coalesce(sum(i.size_bytes), 0) FROM vms v JOIN images i ON i.id = v.rootfs_image_id
          WHERE v.project_id = ${projectId})
        + (SELECT coalesce(sum(coalesce(size_bytes, bytes_total, 0)), 0) FROM images WHERE project_id = ${projectId})
        + (SELECT coalesce(sum(state_bytes + disk_bytes), 0) FROM snapshots WHERE project_id = ${projectId})
          AS disk_bytes,
        to_regclass('functions') IS NOT NULL AS has_functions`,
    );
    const functions = r?.has_functions ? await this.functionCount(db, projectId) : 0;
    return {
      vms: Number(r?.vms ?? 0),
      running_vms: Number(r?.running_vms ?? 0),
      vcpus: Number(r?.vcpus ?? 0),
      memory_mib: Number(r?.memory_mib ?? 0),
      snapshots: Number(r?.snapshots ?? 0),
      disk_gib: Number(r?.disk_bytes ?? 0) / GIB,
      functions,
    };
  }

  /** Functions are counted once their feature's table exists (and has a project). */
  private async functionCount(db: Runner, projectId: string): Promise<number> {
    const [col] = await rows(
      db,
      sql`SELECT 1 FROM information_schema.columns WHERE table_name = 'functions' AND column_name = 'project_id'`,
    );
    if (!col) return 0;
    const [r] = await rows<{ n: string }>(db, sql`SELECT count(*) AS n FROM functions WHERE project_id = ${projectId}`);
    return Number(r?.n ?? 0);
  }

  /** Every project's quota row, for the alert rules. */
  async all(): Promise<{ projectId: string; name: string; quota: QuotaRow }[]> {
    const list = await rows<{ project_id: string; name: string }>(
      this.db,
      sql`SELECT q.project_id, p.name FROM project_quotas q JOIN projects p ON p.id = q.project_id`,
    );
    const out: { projectId: string; name: string; quota: QuotaRow }[] = [];
    for (const r of list) {
      const quota = await this.get(r.project_id);
      if (quota) out.push({ projectId: r.project_id, name: r.name, quota });
    }
    return out;
  }
}
