import type { AlertRule, AlertRulePatch, AlertRuleRequest, FiringAlert } from '@nqvm/api';
import { BadRequest, NotFound, Unprocessable } from '../../domain/errors.ts';
import type { EventsService } from '../events/events.service.ts';
import type { AlertRow, AlertsRepository, NewRule, RuleRow } from './alerts.repository.ts';

function toFiring(a: AlertRow): FiringAlert {
  return {
    id: a.id,
    subject_type: a.subjectType,
    subject_id: a.subjectId,
    subject_name: a.subjectName,
    since: a.firedAt.toISOString(),
    reason: a.reason,
  };
}

function toRule(r: RuleRow, firing: AlertRow[]): AlertRule {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    description: r.description,
    vm_id: r.vmId,
    host_id: r.hostId,
    project_id: r.projectId,
    metric: r.metric,
    threshold: r.threshold,
    duration_s: r.durationS,
    enabled: r.enabled,
    firing: firing.filter((a) => a.ruleId === r.id).map(toFiring),
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
  };
}

function seqCursor(cursor: string | undefined): bigint | undefined {
  if (cursor === undefined) return undefined;
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[0-9]{1,19}$/.test(raw)) throw new BadRequest('invalid_cursor', 'cursor is not valid', 'query.cursor');
  return BigInt(raw);
}

const invalid = (message: string, field: string) => new Unprocessable('alert_rule_invalid', message, field);

export class AlertsService {
  constructor(
    private readonly repo: AlertsRepository,
    private readonly events: EventsService,
  ) {}

  /** A rule carries what its kind needs and nothing it cannot use; the VM or host it names exists. */
  private async check(r: NewRule): Promise<void> {
    const metricFields = [
      ['metric', r.metric],
      ['threshold', r.threshold],
      ['duration_s', r.durationS],
    ] as const;
    if (r.kind === 'metric_above') {
      for (const [name, v] of metricFields)
        if (v === null || v === undefined) throw invalid(`a metric_above rule needs ${name}`, `body.${name}`);
    } else if (r.kind === 'quota_above') {
      if (r.threshold === null || r.threshold === undefined)
        throw invalid('a quota_above rule needs threshold (percent of a limit)', 'body.threshold');
      for (const [name, v] of metricFields.filter(([n]) => n !== 'threshold'))
        if (v !== null && v !== undefined) throw invalid(`a quota_above rule has no ${name}`, `body.${name}`);
      if (r.vmId) throw invalid('a quota_above rule has no vm_id', 'body.vm_id');
    } else
      for (const [name, v] of metricFields)
        if (v !== null && v !== undefined) throw invalid(`a ${r.kind} rule has no ${name}`, `body.${name}`);
    if (r.kind === 'host_unreachable' && r.vmId) throw invalid('a host_unreachable rule has no vm_id', 'body.vm_id');
    if (r.kind !== 'host_unreachable' && r.hostId) throw invalid(`a ${r.kind} rule has no host_id`, 'body.host_id');
    if (r.kind !== 'quota_above' && r.projectId) throw invalid(`a ${r.kind} rule has no project_id`, 'body.project_id');
    if (r.projectId && !(await this.repo.projectExists(r.projectId)))
      throw invalid(`no project ${r.projectId}`, 'body.project_id');
    if (r.vmId && !(await this.repo.vmExists(r.vmId))) throw invalid(`no VM ${r.vmId}`, 'body.vm_id');
    if (r.hostId && !(await this.repo.hostExists(r.hostId))) throw invalid(`no host ${r.hostId}`, 'body.host_id');
  }

  async list(limit: number, cursor?: string): Promise<{ items: AlertRule[]; next_cursor: string | null }> {
    const rows = await this.repo.list(limit + 1, seqCursor(cursor));
    const page = rows.slice(0, limit);
    const firing = await this.repo.firing(page.map((r) => r.id));
    const last = page[page.length - 1];
    return {
      items: page.map((r) => toRule(r, firing)),
      next_cursor: rows.length > limit && last ? Buffer.from(last.seq.toString()).toString('base64url') : null,
    };
  }

  async get(id: string): Promise<AlertRule> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('alert_rule', id);
    return toRule(row, await this.repo.firing([id]));
  }

  async create(req: AlertRuleRequest, actor: string): Promise<AlertRule> {
    const rule: NewRule = {
      name: req.name,
      description: req.description ?? '',
      kind: req.kind,
      vmId: req.vm_id ?? null,
      hostId: req.host_id ?? null,
      projectId: req.project_id ?? null,
      metric: req.metric ?? null,
      threshold: req.threshold ?? null,
      durationS: req.duration_s ?? null,
      enabled: req.enabled ?? true,
    };
    await this.check(rule);
    const row = await this.repo.insert(rule);
    await this.events.record({
      actor,
      resourceType: 'alert_rule',
      resourceId: row.id,
      action: 'create',
      detail: { name: row.name, kind: row.kind },
    });
    return toRule(row, []);
  }

  async update(id: string, p: AlertRulePatch, actor: string): Promise<AlertRule> {
    const cur = await this.repo.get(id);
    if (!cur) throw new NotFound('alert_rule', id);
    const next: NewRule = {
      name: p.name ?? cur.name,
      description: p.description ?? cur.description,
      kind: cur.kind,
      vmId: p.vm_id === undefined ? cur.vmId : p.vm_id,
      hostId: p.host_id === undefined ? cur.hostId : p.host_id,
      projectId: p.project_id === undefined ? cur.projectId : p.project_id,
      metric: p.metric === undefined ? cur.metric : p.metric,
      threshold: p.threshold === undefined ? cur.threshold : p.threshold,
      durationS: p.duration_s === undefined ? cur.durationS : p.duration_s,
      enabled: p.enabled ?? cur.enabled,
    };
    await this.check(next);
    const row = await this.repo.update(id, next);
    if (!row) throw new NotFound('alert_rule', id);
    await this.events.record({
      actor,
      resourceType: 'alert_rule',
      resourceId: id,
      action: 'update',
      detail: { fields: Object.keys(p) },
    });
    return toRule(row, await this.repo.firing([id]));
  }

  async delete(id: string, actor: string): Promise<void> {
    if (!(await this.repo.delete(id))) throw new NotFound('alert_rule', id);
    await this.events.record({ actor, resourceType: 'alert_rule', resourceId: id, action: 'delete' });
  }
}
