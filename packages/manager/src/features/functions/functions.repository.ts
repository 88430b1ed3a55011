import type { InvocationState } from '@nqvm/api';
import { and, asc, desc, eq, gt, inArray, lt, ne, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { images, projects, vms } from '../../db/schema.ts';
import { inProjects } from '../../http/scope.ts';
import type { Tx } from '../operations/operations.repository.ts';
import {
  functionInstances,
  functionInvocations,
  functions,
  functionVersions,
  type InstanceState,
  type VersionSnapshotState,
} from './functions.table.ts';

export type FunctionRow = typeof functions.$inferSelect;
export type VersionRow = typeof functionVersions.$inferSelect;
export type InvocationRow = typeof functionInvocations.$inferSelect;
export type InstanceRow = typeof functionInstances.$inferSelect;
export type NewFunction = Omit<typeof functions.$inferInsert, 'id' | 'createdAt' | 'updatedAt' | 'version'>;
export type NewVersion = Omit<
  typeof functionVersions.$inferInsert,
  'id' | 'functionId' | 'version' | 'createdAt' | 'snapshotState' | 'snapshotId' | 'builderVmId'
>;

const LIVE: InvocationState[] = ['queued', 'running'];

function isUniqueViolation(err: unknown): boolean {
  for (let e = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause)
    if ((e as { code?: unknown }).code === '23505') return true;
  return false;
}

export class FunctionsRepository {
  constructor(private readonly db: Db) {}

  /** The function and its version 1 in one transaction; undefined when the name is taken. */
  /** `check` runs after the insert in its transaction; throwing undoes it (the project's functions quota). */
  async insert(
    f: NewFunction,
    v: NewVersion,
    check?: (tx: Tx) => Promise<void>,
  ): Promise<{ fn: FunctionRow; version: VersionRow } | undefined> {
    try {
      return await this.db.transaction(async (tx) => {
        const [fn] = await tx
          .insert(functions)
          .values({ ...f, version: 1 })
          .returning();
        const [version] = await tx
          .insert(functionVersions)
          .values({ ...v, functionId: fn!.id, version: 1, snapshotState: 'none' })
          .returning();
        await check?.(tx);
        return { fn: fn!, version: version! };
      });
    } catch (err) {
      if (isUniqueViolation(err)) return undefined;
      throw err;
    }
  }

  async projectExists(id: string): Promise<boolean> {
    return (await this.db.select({ id: projects.id }).from(projects).where(eq(projects.id, id))).length > 0;
  }

  async get(id: string): Promise<FunctionRow | undefined> {
    const [row] = await this.db.select().from(functions).where(eq(functions.id, id));
    return row;
  }

  async byName(name: string): Promise<FunctionRow | undefined> {
    const [row] = await this.db.select().from(functions).where(eq(functions.name, name));
    return row;
  }

  async list(
    limit: number,
    afterName?: string,
    projectId?: string,
    visible: string[] | null = null,
  ): Promise<FunctionRow[]> {
    return this.db
      .select()
      .from(functions)
      .where(
        and(
          afterName === undefined ? undefined : gt(functions.name, afterName),
          projectId === undefined ? undefined : eq(functions.projectId, projectId),
          visible === null ? undefined : inProjects(functions.projectId, visible),
        ),
      )
      .orderBy(asc(functions.name))
      .limit(limit);
  }

  /** Changes the function; with `next` also adds its next version and makes it current, in one transaction. */
  async update(
    id: string,
    patch: Partial<NewFunction>,
    next?: NewVersion,
  ): Promise<{ fn: FunctionRow; version?: VersionRow } | undefined> {
    return this.db.transaction(async (tx) => {
      const [fn] = await tx
        .update(functions)
        .set({ ...patch, ...(next ? { version: sql`${functions.version} + 1` } : {}), updatedAt: sql`now()` })
        .where(eq(functions.id, id))
        .returning();
      if (!fn) return undefined;
      if (!next) return { fn };
      const [version] = await tx
        .insert(functionVersions)
        .values({ ...next, functionId: id, version: fn.version, snapshotState: 'none' })
        .returning();
      return { fn, version: version! };
    });
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.delete(functions).where(eq(functions.id, id)).returning({ id: functions.id })).length > 0;
  }

  async version(functionId: string, version: number): Promise<VersionRow | undefined> {
    const [row] = await this.db
      .select()
      .from(functionVersions)
      .where(and(eq(functionVersions.functionId, functionId), eq(functionVersions.version, version)));
    return row;
  }

  async versionById(id: string): Promise<VersionRow | undefined> {
    const [row] = await this.db.select().from(functionVersions).where(eq(functionVersions.id, id));
    return row;
  }

  async versions(functionId: string, limit: number, beforeVersion?: number): Promise<VersionRow[]> {
    return this.db
      .select()
      .from(functionVersions)
      .where(
        and(
          eq(functionVersions.functionId, functionId),
          beforeVersion === undefined ? undefined : lt(functionVersions.version, beforeVersion),
        ),
      )
      .orderBy(desc(functionVersions.version))
      .limit(limit);
  }

  /** Every version of every function (the snapshot keeper's view); `functionId` narrows it. */
  async allVersions(functionId?: string): Promise<VersionRow[]> {
    return this.db
      .select()
      .from(functionVersions)
      .where(functionId === undefined ? undefined : eq(functionVersions.functionId, functionId));
  }

  /** Moves a version's snapshot from `from` to `to` (compare-and-set: one manager builds it). */
  async setSnapshot(
    id: string,
    from: VersionSnapshotState[],
    to: { snapshotState: VersionSnapshotState; snapshotId?: string | null; builderVmId?: string | null },
  ): Promise<boolean> {
    const rows = await this.db
      .update(functionVersions)
      .set(to)
      .where(and(eq(functionVersions.id, id), inArray(functionVersions.snapshotState, from)))
      .returning({ id: functionVersions.id });
    return rows.length > 0;
  }

  async insertInvocation(v: {
    functionId: string;
    versionId: string;
    version: number;
    trigger: 'api' | 'http';
    event: unknown;
    owner: string;
    leaseUntil: Date;
  }): Promise<InvocationRow> {
    const [row] = await this.db
      .insert(functionInvocations)
      .values({
        functionId: v.functionId,
        versionId: v.versionId,
        version: v.version,
        state: 'queued',
        trigger: v.trigger,
        event: v.event as object,
        stdout: '',
        stderr: '',
        stdoutTruncated: false,
        stderrTruncated: false,
        leaseOwner: v.owner,
        leaseExpiresAt: v.leaseUntil,
      })
      .returning();
    return row!;
  }

  async invocation(id: string): Promise<InvocationRow | undefined> {
    const [row] = await this.db.select().from(functionInvocations).where(eq(functionInvocations.id, id));
    return row;
  }

  async invocations(functionId: string, limit: number, beforeSeq?: bigint, state?: InvocationState) {
    return this.db
      .select()
      .from(functionInvocations)
      .where(
        and(
          eq(functionInvocations.functionId, functionId),
          beforeSeq === undefined ? undefined : lt(functionInvocations.seq, beforeSeq),
          state === undefined ? undefined : eq(functionInvocations.state, state),
        ),
      )
      .orderBy(desc(functionInvocations.seq))
      .limit(limit);
  }

  /** Changes a live invocation this manager holds; false when it ended or another manager took it over. */
  async updateInvocation(id: string, owner: string, patch: Partial<typeof functionInvocations.$inferInsert>) {
    const rows = await this.db
      .update(functionInvocations)
      .set(patch)
      .where(
        and(
          eq(functionInvocations.id, id),
          eq(functionInvocations.leaseOwner, owner),
          inArray(functionInvocations.state, LIVE),
        ),
      )
      .returning({ id: functionInvocations.id });
    return rows.length > 0;
  }

  async renewLeases(owner: string, leaseUntil: Date): Promise<void> {
    await this.db
      .update(functionInvocations)
      .set({ leaseExpiresAt: leaseUntil })
      .where(and(eq(functionInvocations.leaseOwner, owner), inArray(functionInvocations.state, LIVE)));
  }

  /**
   * Ends live invocations whose manager is gone (its lease ran out, or — `owner` given — every one it held, for an
   * embedded database that has one manager): failed, and their instances' ids returned for the caller to delete.
   */
  async failAbandoned(now: Date, owner?: string): Promise<InvocationRow[]> {
    return this.db
      .update(functionInvocations)
      .set({
        state: 'failed',
        error: {
          type: 'ManagerLost',
          message: 'the manager running this invocation stopped before it ended',
          stack: null,
          reason: 'runtime',
        },
        finishedAt: now,
        leaseOwner: null,
        leaseExpiresAt: null,
      })
      .where(
        and(
          inArray(functionInvocations.state, LIVE),
          owner === undefined ? lt(functionInvocations.leaseExpiresAt, now) : ne(functionInvocations.leaseOwner, owner),
        ),
      )
      .returning();
  }

  async liveCount(functionId: string): Promise<number> {
    const [row] = await this.db
      .select({ n: sql<number>`count(*)::int` })
      .from(functionInvocations)
      .where(and(eq(functionInvocations.functionId, functionId), inArray(functionInvocations.state, LIVE)));
    return row?.n ?? 0;
  }

  async liveInvocations(functionId: string): Promise<InvocationRow[]> {
    return this.db
      .select()
      .from(functionInvocations)
      .where(and(eq(functionInvocations.functionId, functionId), inArray(functionInvocations.state, LIVE)));
  }

  async liveOnVersion(versionId: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: functionInvocations.id })
      .from(functionInvocations)
      .where(and(eq(functionInvocations.versionId, versionId), inArray(functionInvocations.state, LIVE)))
      .limit(1);
    return rows.length > 0;
  }

  /**
   * VMs tagged as function instances, made before `before`, that no live invocation, pooled instance or snapshot
   * build refers to: left behind by a crash or a delete that failed.
   */
  async orphanFunctionVms(tag: string, before: Date): Promise<string[]> {
    const rows = await this.db
      .select({ id: vms.id })
      .from(vms)
      .where(
        and(
          sql`${tag} = ANY(${vms.tags})`,
          lt(vms.createdAt, before),
          ne(vms.state, 'deleting'),
          sql`NOT EXISTS (SELECT 1 FROM function_invocations i WHERE i.vm_id = ${vms.id} AND i.state IN ('queued', 'running'))`,
          sql`NOT EXISTS (SELECT 1 FROM function_instances p WHERE p.vm_id = ${vms.id})`,
          sql`NOT EXISTS (SELECT 1 FROM function_versions v WHERE v.builder_vm_id = ${vms.id})`,
        ),
      );
    return rows.map((r) => r.id);
  }

  async insertInstance(i: { vmId: string; versionId: string; functionId: string; owner: string }): Promise<void> {
    await this.db.insert(functionInstances).values({ ...i, state: 'starting' });
  }

  async setInstance(vmId: string, state: InstanceState): Promise<void> {
    await this.db.update(functionInstances).set({ state }).where(eq(functionInstances.vmId, vmId));
  }

  /** Takes one ready instance of the version for one invocation (skip-locked: two takers never get the same one). */
  async takeInstance(versionId: string): Promise<InstanceRow | undefined> {
    const ids = this.db
      .select({ vmId: functionInstances.vmId })
      .from(functionInstances)
      .where(and(eq(functionInstances.versionId, versionId), eq(functionInstances.state, 'ready')))
      .orderBy(functionInstances.createdAt)
      .limit(1)
      .for('update', { skipLocked: true });
    const [row] = await this.db
      .update(functionInstances)
      .set({ state: 'taken' })
      .where(inArray(functionInstances.vmId, ids))
      .returning();
    return row;
  }

  async instances(filter: { versionId?: string; functionId?: string } = {}): Promise<InstanceRow[]> {
    return this.db
      .select()
      .from(functionInstances)
      .where(
        and(
          filter.versionId === undefined ? undefined : eq(functionInstances.versionId, filter.versionId),
          filter.functionId === undefined ? undefined : eq(functionInstances.functionId, filter.functionId),
        ),
      );
  }

  async deleteInstance(vmId: string): Promise<void> {
    await this.db.delete(functionInstances).where(eq(functionInstances.vmId, vmId));
  }
}

/** The newest ready image named `name` (the runtimes' kernel and rootfs images, found by name). */
export async function readyImageId(db: Db, name: string): Promise<string | undefined> {
  const [row] = await db
    .select({ id: images.id })
    .from(images)
    .where(and(eq(images.name, name), eq(images.state, 'ready')))
    .orderBy(desc(images.version))
    .limit(1);
  return row?.id;
}
