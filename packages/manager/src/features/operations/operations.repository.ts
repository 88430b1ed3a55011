import type { OperationKind } from '@nqvm/api';
import { and, desc, eq, inArray, isNotNull, lt, lte, or, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { type OperationState, operations } from '../../db/schema.ts';

export type OperationRow = typeof operations.$inferSelect;
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

export const LIVE_STATES: OperationState[] = ['queued', 'running'];

export interface NewOperation {
  kind: OperationKind;
  vmId: string | null;
  actor: string;
  input?: Record<string, unknown>;
}

/** How a claimed operation ends, written only while the claimer still holds it. */
export interface Ending {
  id: string;
  owner: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  reason: string;
  error?: string | null;
}

export interface OperationFilter {
  vmId?: string;
  state?: OperationState;
  kind?: OperationKind;
  /** Only operations on VMs of these projects (null or absent: all); `projectId`: of that one. */
  projects?: string[] | null;
  projectId?: string;
}

/** The operation's VM is in one of `ids` (an operation without a VM belongs to no project). */
function ofProjects(ids: string[]): SQL {
  if (ids.length === 0) return sql`false`;
  return sql`${operations.vmId} IN (SELECT id FROM vms WHERE project_id IN ${ids})`;
}

/** What the worker needs of the table; an interface so its unit tests can pass an in-memory fake. */
export interface OperationStore {
  claim(owner: string, now: Date, leaseUntil: Date, limit: number): Promise<OperationRow[]>;
  renew(id: string, owner: string, leaseUntil: Date): Promise<boolean>;
  step(id: string, owner: string, step: string, now: Date): Promise<boolean>;
  retry(id: string, owner: string, runAfter: Date, error: string, now: Date): Promise<boolean>;
  finish(e: Ending, now: Date): Promise<boolean>;
  get(id: string): Promise<OperationRow | undefined>;
}

const live = inArray(operations.state, LIVE_STATES);
const heldBy = (id: string, owner: string) =>
  and(eq(operations.id, id), eq(operations.state, 'running'), eq(operations.leaseOwner, owner));

export class OperationsRepository implements OperationStore {
  constructor(private readonly db: Db) {}

  /** Written in the transaction of the state change that starts it. */
  async insertIn(tx: Tx | Db, op: NewOperation): Promise<OperationRow> {
    const [row] = await tx
      .insert(operations)
      .values({
        kind: op.kind,
        vmId: op.vmId,
        actor: op.actor,
        input: op.input ?? {},
        step: 'begin',
        state: 'queued',
        attempts: 0,
        runAfter: sql`now()`,
      })
      .returning();
    return row!;
  }

  /**
   * Takes due operations under a lease: queued ones whose backoff has passed and running ones whose claimer's lease
   * expired (it crashed). Only the oldest live operation of a VM is due, so a VM's operations run in order; rows
   * another manager is claiming right now are skipped, not waited for.
   */
  async claim(owner: string, now: Date, leaseUntil: Date, limit: number): Promise<OperationRow[]> {
    const due = or(
      and(eq(operations.state, 'queued'), lte(operations.runAfter, now)),
      and(eq(operations.state, 'running'), lt(operations.leaseExpiresAt, now)),
    );
    const firstOfItsVm = sql`NOT EXISTS (SELECT 1 FROM operations earlier WHERE earlier.vm_id = ${operations.vmId}
      AND earlier.seq < ${operations.seq} AND earlier.state IN ('queued', 'running'))`;
    const ids = this.db
      .select({ id: operations.id })
      .from(operations)
      .where(and(due, firstOfItsVm))
      .orderBy(operations.seq)
      .limit(limit)
      .for('update', { skipLocked: true });
    return this.db
      .update(operations)
      .set({
        state: 'running',
        leaseOwner: owner,
        leaseExpiresAt: leaseUntil,
        attempts: sql`${operations.attempts} + 1`,
        updatedAt: now,
      })
      .where(inArray(operations.id, ids))
      .returning();
  }

  async renew(id: string, owner: string, leaseUntil: Date): Promise<boolean> {
    const rows = await this.db
      .update(operations)
      .set({ leaseExpiresAt: leaseUntil })
      .where(heldBy(id, owner))
      .returning({ id: operations.id });
    return rows.length > 0;
  }

  async step(id: string, owner: string, step: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(operations)
      .set({ step, updatedAt: now })
      .where(heldBy(id, owner))
      .returning({ id: operations.id });
    return rows.length > 0;
  }

  async retry(id: string, owner: string, runAfter: Date, error: string, now: Date): Promise<boolean> {
    const rows = await this.db
      .update(operations)
      .set({ state: 'queued', runAfter, error, leaseOwner: null, leaseExpiresAt: null, updatedAt: now })
      .where(heldBy(id, owner))
      .returning({ id: operations.id });
    return rows.length > 0;
  }

  finish(e: Ending, now: Date): Promise<boolean> {
    return this.finishIn(this.db, e, now);
  }

  async finishIn(tx: Tx | Db, e: Ending, now: Date): Promise<boolean> {
    const rows = await tx
      .update(operations)
      .set({
        state: e.state,
        reason: e.reason,
        ...(e.error !== undefined ? { error: e.error } : {}),
        finishedAt: now,
        updatedAt: now,
        leaseOwner: null,
        leaseExpiresAt: null,
      })
      .where(heldBy(e.id, e.owner))
      .returning({ id: operations.id });
    return rows.length > 0;
  }

  /** The embedded database has one manager: whatever it was running when it stopped is free to resume at once. */
  async releaseAll(now: Date): Promise<number> {
    const rows = await this.db
      .update(operations)
      .set({ state: 'queued', leaseOwner: null, leaseExpiresAt: null, runAfter: now, updatedAt: now })
      .where(eq(operations.state, 'running'))
      .returning({ id: operations.id });
    return rows.length;
  }

  async get(id: string): Promise<OperationRow | undefined> {
    const [row] = await this.db.select().from(operations).where(eq(operations.id, id));
    return row;
  }

  /** Newest first, strictly older than `beforeSeq` when given. */
  list(f: OperationFilter, limit: number, beforeSeq?: number): Promise<OperationRow[]> {
    const w: SQL[] = [];
    if (f.vmId) w.push(eq(operations.vmId, f.vmId));
    if (f.state) w.push(eq(operations.state, f.state));
    if (f.kind) w.push(eq(operations.kind, f.kind));
    if (f.projects) w.push(ofProjects(f.projects));
    if (f.projectId) w.push(ofProjects([f.projectId]));
    if (beforeSeq !== undefined) w.push(lt(operations.seq, beforeSeq));
    return this.db
      .select()
      .from(operations)
      .where(and(...w))
      .orderBy(desc(operations.seq))
      .limit(limit);
  }

  /** Whether a live operation of `kind` names `value` as its input's `key` (a snapshot being restored from). */
  async liveWith(kind: OperationKind, key: string, value: string): Promise<boolean> {
    const rows = await this.db
      .select({ id: operations.id })
      .from(operations)
      .where(and(live, eq(operations.kind, kind), sql`${operations.input} ->> ${key} = ${value}`))
      .limit(1);
    return rows.length > 0;
  }

  /** VMs among `vmIds` with an operation still queued or running. */
  async busyVms(vmIds: string[]): Promise<Set<string>> {
    if (vmIds.length === 0) return new Set();
    const rows = await this.db
      .selectDistinct({ vmId: operations.vmId })
      .from(operations)
      .where(and(live, inArray(operations.vmId, vmIds), isNotNull(operations.vmId)));
    return new Set(rows.map((r) => r.vmId!));
  }
}
