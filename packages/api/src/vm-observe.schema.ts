import { type Static, Type } from 'typebox';
import { IdParams, Timestamp } from './common.schema.ts';
import { route } from './route.ts';

const Num = Type.Union([Type.Number(), Type.Null()]);
const Bytes = Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]);

export const GuestHealth = Type.Union(
  [Type.Literal('healthy'), Type.Literal('unhealthy'), Type.Literal('unreachable'), Type.Literal('not_installed')],
  {
    description:
      'not_installed: the VM was created without the guest agent; unreachable: installed but not answering; ' +
      'unhealthy: answering with a reply that is too large, too slow or not the metrics document',
  },
);
export type GuestHealth = Static<typeof GuestHealth>;

/** What the host sees of a VM: its VMM process, its disks through QMP and its TAPs; null where unavailable. */
export const HostMetrics = Type.Object(
  {
    source: Type.Literal('host'),
    cpu_pct: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
      description: 'VMM process CPU since the previous sample, in percent of one host core (2 busy vCPUs = 200)',
    }),
    rss_bytes: Bytes,
    disk_read_bytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Cumulative since the VMM started (QMP query-blockstats); null when QMP did not answer',
    }),
    disk_write_bytes: Bytes,
    net_rx_bytes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], {
      description: 'Received by the guest (sent by the host on its TAPs), cumulative; null when the VM has no NIC',
    }),
    net_tx_bytes: Bytes,
  },
  { additionalProperties: false },
);
export type HostMetrics = Static<typeof HostMetrics>;

/** What the guest agent reports about itself (GET :9000/metrics inside the VM). */
export const GuestMetricsValues = Type.Object(
  {
    cpu_pct: Type.Number({ description: 'Busy share of all guest CPUs, 0-100' }),
    cpu_count: Type.Integer({ minimum: 0 }),
    mem_used_bytes: Type.Integer({ minimum: 0 }),
    mem_total_bytes: Type.Integer({ minimum: 0 }),
    mem_available_bytes: Type.Integer({ minimum: 0 }),
    uptime_s: Type.Number({ minimum: 0 }),
    load_1: Type.Number({ minimum: 0 }),
    process_count: Type.Integer({ minimum: 0 }),
    disk_used_bytes: Type.Integer({ minimum: 0 }),
    disk_total_bytes: Type.Integer({ minimum: 0 }),
    net_rx_bytes: Type.Integer({ minimum: 0 }),
    net_tx_bytes: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type GuestMetricsValues = Static<typeof GuestMetricsValues>;

export const GuestMetricsGroup = Type.Object(
  {
    source: Type.Literal('guest'),
    health: GuestHealth,
    last_seen: Type.Union([Timestamp, Type.Null()], { description: 'Last time the guest agent answered' }),
    metrics: Type.Union([GuestMetricsValues, Type.Null()], { description: 'null unless health is healthy' }),
  },
  { additionalProperties: false },
);
export type GuestMetricsGroup = Static<typeof GuestMetricsGroup>;

/** One metrics sample of a VM: the frame of the live metrics WebSockets and the flush-metrics answer. */
export const VmMetricsSample = Type.Object(
  {
    type: Type.Literal('sample'),
    vm_id: Type.String(),
    at: Timestamp,
    host: HostMetrics,
    guest: GuestMetricsGroup,
  },
  { additionalProperties: false },
);
export type VmMetricsSample = Static<typeof VmMetricsSample>;

export const ShellCredentials = Type.Object(
  {
    username: Type.Union([Type.String(), Type.Null()]),
    password: Type.Union([Type.String(), Type.Null()], { description: 'Decrypted on request; stored encrypted' }),
  },
  { additionalProperties: false },
);
export type ShellCredentials = Static<typeof ShellCredentials>;

export const MetricsStep = Type.Union([Type.Literal('raw'), Type.Literal('5m'), Type.Literal('1h')], {
  description: 'raw: stored samples (10 s for the last 24 h, 5-minute points before); 5m and 1h: averaged buckets',
});
export type MetricsStep = Static<typeof MetricsStep>;

export const MetricsHistoryQuery = Type.Object(
  {
    from: Type.Optional(Type.String({ format: 'date-time', description: 'Default: `to` minus one hour' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'Default: now' })),
    step: Type.Optional(MetricsStep),
  },
  { additionalProperties: false },
);
export type MetricsHistoryQuery = Static<typeof MetricsHistoryQuery>;

/** A stored or aggregated point: rates and gauges are averages, cumulative counters the last value. */
export const MetricsPoint = Type.Object(
  {
    at: Timestamp,
    host_cpu_pct: Num,
    guest_cpu_pct: Num,
    rss_bytes: Num,
    mem_used_bytes: Num,
    mem_total_bytes: Num,
    disk_read_bytes: Num,
    disk_write_bytes: Num,
    net_rx_bytes: Num,
    net_tx_bytes: Num,
    guest_health: Type.Union([GuestHealth, Type.Null()]),
    samples: Type.Integer({ minimum: 1, description: 'How many 10 s samples this point stands for' }),
  },
  { additionalProperties: false },
);
export type MetricsPoint = Static<typeof MetricsPoint>;

export const MetricsHistory = Type.Object(
  { vm_id: Type.String(), from: Timestamp, to: Timestamp, step: MetricsStep, points: Type.Array(MetricsPoint) },
  { additionalProperties: false },
);
export type MetricsHistory = Static<typeof MetricsHistory>;

/** Text control frames of the console WebSockets (binary frames carry terminal bytes both ways). */
export type ConsoleControl =
  | { type: 'hello'; scrollback_bytes: number }
  | { type: 'status'; state: 'connected' | 'reconnecting' | 'vm_gone' }
  | { type: 'resize'; cols: number; rows: number }
  | { type: 'error'; message: string };

export const vmObserveRoutes = {
  shell: route({
    method: 'GET',
    path: '/v1/vms/:id/shell',
    operationId: 'getVmShellCredentials',
    permission: 'vm:shell',
    summary: "The guest login's username and password (decrypted) for the serial shell at /v1/vms/{id}/shell/ws",
    tag: 'vms',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: ShellCredentials,
  }),
  metricsHistory: route({
    method: 'GET',
    path: '/v1/vms/:id/metrics',
    operationId: 'getVmMetricsHistory',
    permission: 'vm:read',
    summary: 'Stored metrics of a VM for a time range (live frames: the WebSocket /v1/vms/{id}/metrics/ws)',
    tag: 'vms',
    auth: 'user',
    status: 200,
    params: IdParams,
    query: MetricsHistoryQuery,
    response: MetricsHistory,
  }),
  flushMetrics: route({
    method: 'POST',
    path: '/v1/vms/:id/flush-metrics',
    operationId: 'flushVmMetrics',
    permission: 'vm:write',
    summary: 'Take a metrics sample now, store it and return it',
    tag: 'vms',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: VmMetricsSample,
  }),
};
