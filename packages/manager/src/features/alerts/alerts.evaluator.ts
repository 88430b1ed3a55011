import type { FastifyBaseLogger } from 'fastify';
import { LeasePoller } from '../../domain/lease-poller.ts';
import type { AlertRow, AlertsRepository, RuleRow, Subject } from './alerts.repository.ts';

export interface QuotaShares {
  /** Projects (one, or every one with a quota) using more than `percent` of a limit, the fullest named. */
  above(projectId: string | null, percent: number): Promise<Subject[]>;
}

export interface EvaluatorOptions {
  intervalMs: number;
  /** A host is unreachable after this long without a heartbeat. */
  heartbeatTimeoutS: number;
  /** The metrics sampling period: a metric rule needs its window covered by samples. */
  sampleIntervalS: number;
}

/**
 * Evaluates every alert rule on a timer. Every manager runs one: firing and resolving are single conditional writes
 * (one firing alert per rule and subject), so two evaluating side by side still fire and resolve each alert once.
 */
export class AlertEvaluator {
  /** Nothing is claimed: each pass evaluates every rule (one pass at a time in this process). */
  private readonly poller: LeasePoller<never>;

  constructor(
    private readonly repo: AlertsRepository,
    private readonly o: EvaluatorOptions,
    log: Pick<FastifyBaseLogger, 'error'>,
    /** Projects using more than a share of a quota limit (the quotas feature). */
    private readonly quotas: QuotaShares = { above: async () => [] },
  ) {
    this.poller = new LeasePoller<never>({
      claim: async () => {
        await this.tick();
        return [];
      },
      run: async () => {},
      key: () => '',
      concurrency: 1,
      messages: { claim: 'alert evaluation failed', run: 'alert evaluation failed' },
      log,
    });
  }

  /** Evaluates every `intervalMs`, the first time one interval from now. */
  start(): void {
    this.poller.start(this.o.intervalMs, false);
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  async tick(): Promise<void> {
    const rules = await this.repo.allRules();
    const firing = await this.repo.firing();
    for (const rule of rules) {
      const mine = firing.filter((a) => a.ruleId === rule.id);
      if (!rule.enabled) {
        for (const a of mine) await this.repo.resolve(rule, a, 'the rule was disabled');
        continue;
      }
      await this.evaluate(rule, mine);
    }
  }

  private async evaluate(rule: RuleRow, mine: AlertRow[]): Promise<void> {
    const holds = await this.holding(rule);
    const toFire = new Map(holds.map((s) => [s.id, s]));
    if (rule.kind === 'vm_crashed') {
      const exits = await this.repo.vmmExitsSince(rule.eventCursor, rule.vmId);
      for (const s of exits.subjects) if (!toFire.has(s.id)) toFire.set(s.id, s);
      if (exits.cursor !== rule.eventCursor) await this.repo.setCursor(rule.id, exits.cursor);
    }
    const already = new Set(mine.map((a) => a.subjectId));
    for (const s of toFire.values()) if (!already.has(s.id)) await this.repo.fire(rule, s);
    const resolved = await this.resolvedOf(rule, mine, holds);
    for (const a of mine) {
      const why = resolved.get(a.subjectId);
      if (why) await this.repo.resolve(rule, a, why);
    }
  }

  private holding(rule: RuleRow): Promise<Subject[]> {
    switch (rule.kind) {
      case 'vm_crashed':
        return this.repo.crashedVms(rule.vmId);
      case 'host_unreachable':
        return this.repo.unreachableHosts(rule.hostId, this.o.heartbeatTimeoutS);
      case 'metric_above':
        return this.repo.metricAbove(rule, this.o.sampleIntervalS);
      case 'quota_above':
        return this.quotas.above(rule.projectId, rule.threshold ?? 100);
    }
  }

  /** Which firing alerts end now, and why. A crashed VM's alert ends only once it runs again (or is gone). */
  private async resolvedOf(rule: RuleRow, mine: AlertRow[], holds: Subject[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (rule.kind === 'vm_crashed') {
      const back = await this.repo.recoveredVms(mine.map((a) => a.subjectId));
      for (const id of back) out.set(id, 'the VM runs again, or was stopped or deleted');
      return out;
    }
    const still = new Set(holds.map((s) => s.id));
    const why =
      rule.kind === 'host_unreachable'
        ? 'the host sends heartbeats again'
        : rule.kind === 'quota_above'
          ? 'the quota use is back under the threshold'
          : 'the metric is back under the threshold';
    for (const a of mine) if (!still.has(a.subjectId)) out.set(a.subjectId, why);
    return out;
  }
}
