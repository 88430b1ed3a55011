import { type Static, Type } from 'typebox';
import { IdParams, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

export const QUOTA_RESOURCES = [
  'vcpus',
  'memory_mib',
  'vms',
  'running_vms',
  'disk_gib',
  'snapshots',
  'functions',
] as const;
export type QuotaResource = (typeof QUOTA_RESOURCES)[number];

const Limit = (description: string) =>
  // One schema with two types, not a union: the validator coerces types and would read null as 0 (or 0 as null) in
  // a union, whichever branch came first.
  Type.Unsafe<number | null>({ type: ['integer', 'null'], minimum: 0, maximum: 1_000_000_000, description });

const LimitFields = {
  vcpus: Limit('vCPUs of the VMs that hold resources (creating, starting, running, paused, stopping, unknown)'),
  memory_mib: Limit('Memory (MiB) of the VMs that hold resources'),
  vms: Limit('VMs, in any state'),
  running_vms: Limit('VMs that hold resources (creating, starting, running, paused, stopping, unknown)'),
  disk_gib: Limit('GiB of VM disks (their rootfs image size), images and snapshots'),
  snapshots: Limit('Snapshots'),
  functions: Limit('Functions'),
};
const RateFields = {
  rate_limit_per_token: Limit("Requests per window per API token of this project; null: the manager's default"),
  rate_limit_per_user: Limit("Requests per window per user of this project; null: the manager's default"),
};

const Use = Type.Object(
  {
    vcpus: Type.Integer(),
    memory_mib: Type.Integer(),
    vms: Type.Integer(),
    running_vms: Type.Integer(),
    disk_gib: Type.Number({ description: 'May be fractional' }),
    snapshots: Type.Integer(),
    functions: Type.Integer(),
  },
  { additionalProperties: false, description: 'What the project uses now, per resource' },
);

export const Quota = Type.Object(
  {
    project_id: Uuid,
    ...LimitFields,
    ...RateFields,
    used: Use,
    updated_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false, description: 'A null limit is unlimited' },
);
export type Quota = Static<typeof Quota>;

export const QuotaRequest = Type.Partial(Type.Object({ ...LimitFields, ...RateFields }), {
  additionalProperties: false,
  description: 'Fields left out keep their value; null removes a limit',
});
export type QuotaRequest = Static<typeof QuotaRequest>;

const UsageFigures = {
  vcpu_seconds: Type.Number({ description: 'vCPU-seconds while the VM held its vCPUs (running, paused, stopping)' }),
  memory_gib_seconds: Type.Number(),
  disk_gib_hours: Type.Number({ description: 'GiB-hours of VM disks allocated (from create to delete)' }),
  snapshot_gib_hours: Type.Number(),
  network_rx_bytes: Type.Number(),
  network_tx_bytes: Type.Number(),
};
export const UsageTotals = Type.Object(UsageFigures, { additionalProperties: false });
export type UsageTotals = Static<typeof UsageTotals>;

export const UsageBucket = Type.Object(
  { start: Timestamp, end: Timestamp, ...UsageFigures },
  { additionalProperties: false },
);

export const UsageResource = Type.Object(
  {
    resource_type: Type.Union([Type.Literal('vm'), Type.Literal('snapshot')]),
    resource_id: Uuid,
    name: Type.String(),
    total: UsageTotals,
    buckets: Type.Array(UsageBucket),
  },
  { additionalProperties: false },
);

export const Usage = Type.Object(
  {
    project_id: Uuid,
    from: Timestamp,
    to: Timestamp,
    granularity: Type.Union([Type.Literal('hour'), Type.Literal('day')]),
    total: UsageTotals,
    buckets: Type.Array(UsageBucket),
    resources: Type.Array(UsageResource, { description: 'Per VM and snapshot' }),
  },
  { additionalProperties: false },
);
export type Usage = Static<typeof Usage>;

export const UsageQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Default: 24 hours before `to`' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Default: now' })),
    granularity: Type.Optional(Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'hour' })),
  },
  { additionalProperties: false },
);

export const quotaRoutes = {
  get: route({
    method: 'GET',
    path: '/v1/projects/:id/quota',
    operationId: 'getProjectQuota',
    permission: 'quota:read',
    summary: "A project's quota, its rate-limit overrides and what it uses now",
    tag: 'quotas',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Quota,
  }),
  put: route({
    method: 'PUT',
    path: '/v1/projects/:id/quota',
    operationId: 'setProjectQuota',
    permission: 'quota:write',
    summary:
      "Set a project's quota (null: unlimited) and rate-limit overrides; creates, starts, clones, instantiates and " +
      'imports past a limit answer 409 `quota_exceeded`',
    tag: 'quotas',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: QuotaRequest,
    response: Quota,
  }),
  usage: route({
    method: 'GET',
    path: '/v1/projects/:id/usage',
    operationId: 'getProjectUsage',
    permission: 'usage:read',
    summary:
      "A project's metered usage per hour or day, with a per-VM and per-snapshot breakdown (`Accept: text/csv` for CSV)",
    tag: 'quotas',
    auth: 'user',
    status: 200,
    params: IdParams,
    query: UsageQuery,
    response: Usage,
  }),
};
