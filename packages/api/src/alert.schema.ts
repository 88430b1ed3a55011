import { type Static, Type } from 'typebox';
import { CursorQuery, Description, IdParams, Name, Nullable, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

export const AlertRuleKind = Type.Union(
  [
    Type.Literal('vm_crashed'),
    Type.Literal('host_unreachable'),
    Type.Literal('metric_above'),
    Type.Literal('quota_above'),
  ],
  {
    description:
      '`vm_crashed`: a VM whose VMM died (or that is in error or unknown) until it runs again; `host_unreachable`: a host ' +
      'past its heartbeat timeout; `metric_above`: a running VM whose metric stayed above `threshold` for `duration_s`; ' +
      "`quota_above`: a project using more than `threshold` percent of one of its quota's limits",
  },
);
export type AlertRuleKind = Static<typeof AlertRuleKind>;

export const AlertMetric = Type.Union([
  Type.Literal('host_cpu_percent'),
  Type.Literal('guest_cpu_percent'),
  Type.Literal('memory_percent'),
]);
export type AlertMetric = Static<typeof AlertMetric>;

export const FiringAlert = Type.Object(
  {
    id: Uuid,
    subject_type: Type.Union([Type.Literal('vm'), Type.Literal('host'), Type.Literal('project')]),
    subject_id: Uuid,
    subject_name: Type.String(),
    since: Timestamp,
    reason: Type.String(),
  },
  { additionalProperties: false },
);
export type FiringAlert = Static<typeof FiringAlert>;

const RuleFields = {
  description: Description,
  vm_id: Nullable(Uuid, { description: 'Only this VM (vm_crashed, metric_above); null: every VM' }),
  host_id: Nullable(Uuid, { description: 'Only this host (host_unreachable); null: every host' }),
  project_id: Nullable(Uuid, { description: 'Only this project (quota_above); null: every project with a quota' }),
  metric: Nullable(AlertMetric),
  threshold: Nullable(Type.Number({ minimum: 0, maximum: 100 }), { description: 'Percent' }),
  duration_s: Nullable(Type.Integer({ minimum: 1, maximum: 86_400 })),
  enabled: Type.Boolean(),
};

export const AlertRule = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    kind: AlertRuleKind,
    ...RuleFields,
    firing: Type.Array(FiringAlert, { description: 'What the rule fires for now' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type AlertRule = Static<typeof AlertRule>;

export const AlertRuleRequest = Type.Object(
  {
    name: Name,
    kind: AlertRuleKind,
    description: Type.Optional(Description),
    vm_id: Type.Optional(RuleFields.vm_id),
    host_id: Type.Optional(RuleFields.host_id),
    project_id: Type.Optional(RuleFields.project_id),
    metric: Type.Optional(RuleFields.metric),
    threshold: Type.Optional(RuleFields.threshold),
    duration_s: Type.Optional(RuleFields.duration_s),
    enabled: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);
export type AlertRuleRequest = Static<typeof AlertRuleRequest>;

export const AlertRulePatch = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Description),
    vm_id: Type.Optional(RuleFields.vm_id),
    host_id: Type.Optional(RuleFields.host_id),
    project_id: Type.Optional(RuleFields.project_id),
    metric: Type.Optional(RuleFields.metric),
    threshold: Type.Optional(RuleFields.threshold),
    duration_s: Type.Optional(RuleFields.duration_s),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type AlertRulePatch = Static<typeof AlertRulePatch>;

export const alertRuleRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/alert-rules',
    operationId: 'listAlertRules',
    permission: 'alert:read',
    summary: 'Alert rules, oldest first, each with what it fires for now',
    tag: 'alerts',
    auth: 'user',
    status: 200,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(AlertRule),
  }),
  create: route({
    method: 'POST',
    path: '/v1/alert-rules',
    operationId: 'createAlertRule',
    permission: 'alert:write',
    summary:
      'Create an alert rule; it fires and resolves as `alert.firing` / `alert.resolved` events (and so webhook deliveries)',
    tag: 'alerts',
    auth: 'user',
    status: 201,
    body: AlertRuleRequest,
    response: AlertRule,
  }),
  get: route({
    method: 'GET',
    path: '/v1/alert-rules/:id',
    operationId: 'getAlertRule',
    permission: 'alert:read',
    summary: 'One alert rule',
    tag: 'alerts',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: AlertRule,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/alert-rules/:id',
    operationId: 'updateAlertRule',
    permission: 'alert:write',
    summary: 'Change an alert rule; a disabled rule resolves what it fired for',
    tag: 'alerts',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: AlertRulePatch,
    response: AlertRule,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/alert-rules/:id',
    operationId: 'deleteAlertRule',
    permission: 'alert:write',
    summary: 'Delete an alert rule',
    tag: 'alerts',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
};
