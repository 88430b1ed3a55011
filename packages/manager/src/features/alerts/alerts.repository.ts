import { and, eq, gt, inArray, type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { events } from '../../db/schema.ts';
import { alertRules, alerts } from './alerts.table.ts';

export type RuleRow = typeof alertRules.$inferSelect;
export type AlertRow = typeof alerts.$inferSelect;
export type NewRule = Omit<typeof alertRules.$inferInsert, 'id' | 'seq' | 'eventCursor' | 'createdAt' | 'updatedAt'>;

/** Something a rule fires for: a VM or a host, and why. */
export interface Subject {
  type: 'vm' | 'host' | 'project';
  id: string;
  name: string;
  reason: string;
}

async function rows<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

const METRIC: Record<string, SQL> = {
  host_cpu_percent: sql`m.host_cpu_pct`,
  guest_cpu_percent: sql`m.guest_cpu_pct`,
  memory_percent: sql`100.0 * m.mem_used_bytes / nullif(m.mem_total_bytes, 0)`,
};

export class AlertsRepository {
  constructor(private readonly db: Db) {}

  /** A new rule looks only at events from now on. */
  async insert(r: NewRule): Promise<RuleRow> {
    const [row] = await this.db
      .insert(alertRules)
      .values({ ...r, eventCursor: sql`(SELECT coalesce(max(id), 0) FROM events)` })
      .returning();
    return row!;
  }

  async get(id: string): Promise<RuleRow | undefined> {
    const [row] = await this.db.select().from(alertRules).where(eq(alertRules.id, id));
    return row;
  }

  async list(limit: number, afterSeq?: bigint): Promise<RuleRow[]> {
    return this.db
      .select()
      .from(alertRules)
      .where(afterSeq === undefined ? undefined : gt(alertRules.seq, afterSeq))
      .orderBy(alertRules.seq)
      .limit(limit);
  }

  async update(id: string, patch: Partial<NewRule>): Promise<RuleRow | undefined> {
    const [row] = await this.db
      .update(alertRules)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(alertRules.id, id))
      .returning();
    return row;
  }

  async delete(id: string): Promise<boolean> {
    return (await this.db.delete(alertRules).where(eq(alertRules.id, id)).returning({ id: alertRules.id })).length > 0;
  }

  async vmExists(id: string): Promise<boolean> {
    return (await rows(this.db, sql`SELECT 1 FROM vms WHERE id = ${id}`)).length > 0;
  }

  async projectExists(id: string): Promise<boolean> {
    return (await rows(this.db, sql`SELECT 1 FROM projects WHERE id = ${id}`)).length > 0;
  }

  async hostExists(id: string): Promise<boolean> {
    return (await rows(this.db, sql`SELECT 1 FROM hosts WHERE id = ${id}`)).length > 0;
  }

  /** Firing alerts, of the given rules or of all. */
  async firing(ruleIds?: string[]): Promise<AlertRow[]> {
    if (ruleIds && ruleIds.length === 0) return [];
    return this.db
      .select()
      .from(alerts)
      .where(and(eq(alerts.state, 'firing'), ruleIds ? inArray(alerts.ruleId, ruleIds) : undefined))
      .orderBy(alerts.firedAt);
  }

  async allRules(): Promise<RuleRow[]> {
    return this.db.select().from(alertRules).orderBy(alertRules.seq);
  }

  /** VMs whose VMM died (stopped or restarting with the error kept), or in error or unknown. */
  async crashedVms(vmId: string | null): Promise<Subject[]> {
    const found = await rows<{ id: string; name: string; state: string; last_error: string | null }>(
      this.db,
      sql`SELECT id, name, state, last_error FROM vms
           WHERE (state IN ('error', 'unknown') OR (state IN ('stopped', 'starting') AND last_error IS NOT NULL))
             AND (${vmId}::uuid IS NULL OR id = ${vmId}::uuid)`,
    );
    return found.map((v) => ({
      type: 'vm',
      id: v.id,
      name: v.name,
      reason: v.last_error ? `${v.last_error} (VM ${v.state})` : `the VM is ${v.state}`,
    }));
  }

  /** Of these VMs, the ones a vm_crashed alert resolves for: running again, gone, or stopped without an error. */
  async recoveredVms(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const still = await rows<{ id: string }>(
      this.db,
      sql`SELECT id FROM vms WHERE id IN (${sql.join(
        ids.map((i) => sql`${i}::uuid`),
        sql`, `,
      )}) AND NOT (state IN ('running', 'paused', 'deleting') OR (state = 'stopped' AND last_error IS NULL))`,
    );
    const stuck = new Set(still.map((r) => r.id));
    return new Set(ids.filter((i) => !stuck.has(i)));
  }

  /** VMM exits since the rule last looked (a restart policy may have brought the VM back before an evaluation). */
  async vmmExitsSince(cursor: bigint, vmId: string | null): Promise<{ subjects: Subject[]; cursor: bigint }> {
    const found = await rows<{ id: string; vm_id: string; name: string | null; detail: { signal?: string | null } }>(
      this.db,
      sql`SELECT e.id::text, e.resource_id AS vm_id, v.name, e.detail FROM events e
            LEFT JOIN vms v ON v.id::text = e.resource_id
           WHERE e.id > ${cursor.toString()}::bigint AND e.resource_type = 'vm' AND e.action = 'vmm_exited'
             AND e.result = 'error' AND (${vmId}::text IS NULL OR e.resource_id = ${vmId}::text)
           ORDER BY e.id`,
    );
    const [newest] = await rows<{ id: string }>(this.db, sql`SELECT coalesce(max(id), 0)::text AS id FROM events`);
    const subjects = found
      .filter((e) => e.name !== null)
      .map((e) => ({
        type: 'vm' as const,
        id: e.vm_id,
        name: e.name!,
        reason: e.detail.signal ? `VMM killed by ${e.detail.signal}` : 'VMM exited with an error',
      }));
    return { subjects, cursor: BigInt(newest?.id ?? cursor.toString()) };
  }

  async setCursor(ruleId: string, cursor: bigint): Promise<void> {
    await this.db.update(alertRules).set({ eventCursor: cursor }).where(eq(alertRules.id, ruleId));
  }

  /** Hosts past their heartbeat timeout (or that never sent one). */
  async unreachableHosts(hostId: string | null, timeoutS: number): Promise<Subject[]> {
    const found = await rows<{ id: string; name: string; last_seen_at: string | null }>(
      this.db,
      sql`SELECT id, name, last_seen_at FROM hosts
           WHERE (last_seen_at IS NULL OR last_seen_at < now() - make_interval(secs => ${timeoutS}))
             AND (${hostId}::uuid IS NULL OR id = ${hostId}::uuid)`,
    );
    return found.map((h) => ({
      type: 'host',
      id: h.id,
      name: h.name,
      reason: h.last_seen_at
        ? `no heartbeat since ${new Date(h.last_seen_at).toISOString()}`
        : 'no heartbeat ever received',
    }));
  }

  /** Running VMs whose every sample over the last `durationS` (covering it) is above the threshold. */
  async metricAbove(r: RuleRow, sampleIntervalS: number): Promise<Subject[]> {
    const expr = METRIC[r.metric ?? ''];
    if (!expr || r.threshold === null || r.durationS === null) return [];
    const slack = Math.max(1, sampleIntervalS * 1.5);
    const found = await rows<{ id: string; name: string; low: number }>(
      this.db,
      sql`SELECT m.vm_id AS id, v.name, min(${expr}) AS low FROM vm_metrics m JOIN vms v ON v.id = m.vm_id
           WHERE m.resolution = 'raw' AND m.at > now() - make_interval(secs => ${r.durationS})
             AND v.state = 'running' AND (${r.vmId}::uuid IS NULL OR m.vm_id = ${r.vmId}::uuid)
           GROUP BY m.vm_id, v.name
          HAVING bool_and(coalesce(${expr} > ${r.threshold}, false))
             AND min(m.at) <= now() - make_interval(secs => ${r.durationS}) + make_interval(secs => ${slack})`,
    );
    return found.map((v) => ({
      type: 'vm',
      id: v.id,
      name: v.name,
      reason: `${r.metric} above ${r.threshold} for ${r.durationS} s (lowest ${Number(v.low).toFixed(1)})`,
    }));
  }

  /** Fires once: the alert and its event in one transaction; false when it already fires (another manager). */
  async fire(rule: RuleRow, s: Subject): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [a] = await tx
        .insert(alerts)
        .values({
          ruleId: rule.id,
          subjectType: s.type,
          subjectId: s.id,
          subjectName: s.name,
          state: 'firing',
          reason: s.reason,
        })
        .onConflictDoNothing()
        .returning();
      if (!a) return false;
      await tx.insert(events).values({
        actor: 'system',
        resourceType: 'alert',
        resourceId: a.id,
        action: 'firing',
        result: 'error',
        detail: alertDetail(rule, a, s.reason),
      });
      return true;
    });
  }

  /** Resolves once, with its event in the same transaction. */
  async resolve(rule: RuleRow, alert: AlertRow, reason: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [a] = await tx
        .update(alerts)
        .set({ state: 'resolved', resolvedAt: sql`now()` })
        .where(and(eq(alerts.id, alert.id), eq(alerts.state, 'firing')))
        .returning();
      if (!a) return false;
      await tx.insert(events).values({
        actor: 'system',
        resourceType: 'alert',
        resourceId: a.id,
        action: 'resolved',
        result: 'ok',
        detail: alertDetail(rule, a, reason),
      });
      return true;
    });
  }
}

function alertDetail(rule: RuleRow, a: AlertRow, reason: string): Record<string, unknown> {
  return {
    rule_id: rule.id,
    rule_name: rule.name,
    kind: rule.kind,
    subject_type: a.subjectType,
    subject_id: a.subjectId,
    subject_name: a.subjectName,
    reason,
    fired_at: a.firedAt.toISOString(),
  };
}
