import { type Static, Type } from 'typebox';
import { AgentVmSpec, AgentVmStatus, RateLimiterSchema } from './agent.schema.ts';
import { Ok } from './common.schema.ts';
import { AgentMmds } from './mmds.schema.ts';
import { route } from './route.ts';
import { AgentSnapshotCreate, AgentSnapshotInfo } from './snapshot.schema.ts';
import { BalloonStats } from './vm-balloon.schema.ts';
import { VmMetricsSample } from './vm-observe.schema.ts';

/**
 * The manager → agent API (`/agent/v1` on every host, Bearer per-host secret). Internal: served by the agent,
 * called only through the manager's agent client, never part of the public OpenAPI document.
 */

// Ids are checked by the agent itself (`invalid_vm_id`, `invalid_snapshot_id`) before they reach a path or argv.
const VmId = Type.String({ maxLength: 64, description: 'A VM id (UUID)' });
const SnapshotId = Type.String({ maxLength: 64, description: 'A snapshot id (UUID)' });
export const AgentVmParams = Type.Object({ id: VmId }, { additionalProperties: false });
const AgentSnapshotParams = Type.Object({ sid: SnapshotId }, { additionalProperties: false });
const AgentVmSnapshotParams = Type.Object({ id: VmId, sid: SnapshotId }, { additionalProperties: false });
const AgentDriveParams = Type.Object(
  { id: VmId, drive_id: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
const AgentNicParams = Type.Object(
  { id: VmId, iface_id: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);

export const AgentVmList = Type.Object({ items: Type.Array(AgentVmStatus) }, { additionalProperties: false });
export type AgentVmList = Static<typeof AgentVmList>;

export const AgentStopRequest = Type.Object(
  {
    timeout_s: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
    force: Type.Optional(Type.Boolean({ description: 'SIGKILL the VMM at once, no ACPI power-down' })),
  },
  { additionalProperties: false },
);

const Limiter = Type.Union([RateLimiterSchema, Type.Null()], { description: 'null removes the limit' });
export const AgentDriveLimits = Type.Object({ rate_limiter: Limiter }, { additionalProperties: false });
export type AgentDriveLimits = Static<typeof AgentDriveLimits>;
export const AgentNicLimits = Type.Object(
  { rx_rate_limiter: Type.Optional(Limiter), tx_rate_limiter: Type.Optional(Limiter) },
  { additionalProperties: false },
);
export type AgentNicLimits = Static<typeof AgentNicLimits>;
export const AgentBalloonChange = Type.Object(
  {
    amount_mib: Type.Optional(Type.Integer({ minimum: 0 })),
    stats_polling_interval_s: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })),
  },
  { additionalProperties: false },
);
export type AgentBalloonChange = Static<typeof AgentBalloonChange>;

export const AgentSpecRequest = Type.Object({ spec: AgentVmSpec }, { additionalProperties: false });

export const AgentLogKind = Type.Union([Type.Literal('console'), Type.Literal('vmm')]);
export const AgentLogQuery = Type.Object(
  {
    kind: AgentLogKind,
    lines: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 100 })),
    follow: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);
export type AgentLogQuery = Static<typeof AgentLogQuery>;

const SECOND = 1000;
const vmRoute = { tag: 'agent-vms', auth: 'host', timeoutMs: 120 * SECOND } as const;
const deviceRoute = { tag: 'agent-devices', auth: 'host', timeoutMs: 30 * SECOND } as const;
// Saving guest RAM and copying a disk take a while.
const snapshotRoute = { tag: 'agent-snapshots', auth: 'host', timeoutMs: 300 * SECOND } as const;
const mmdsRoute = { tag: 'agent-mmds', auth: 'host', timeoutMs: 30 * SECOND } as const;
const observeRoute = { tag: 'agent-observe', auth: 'host', timeoutMs: 5 * SECOND } as const;

export const agentVmRoutes = {
  health: route({
    ...vmRoute,
    method: 'GET',
    path: '/agent/v1/health',
    operationId: 'agentHealth',
    summary: 'The agent answers (no credentials)',
    auth: 'public',
    timeoutMs: 5 * SECOND,
    status: 200,
    response: Ok,
  }),
  list: route({
    ...vmRoute,
    method: 'GET',
    path: '/agent/v1/vms',
    operationId: 'agentListVms',
    summary: 'Every VM this host has, with its observed state',
    timeoutMs: 30 * SECOND,
    status: 200,
    response: AgentVmList,
  }),
  get: route({
    ...vmRoute,
    method: 'GET',
    path: '/agent/v1/vms/:id',
    operationId: 'agentGetVm',
    summary: 'One VM of this host',
    timeoutMs: 30 * SECOND,
    status: 200,
    params: AgentVmParams,
    response: AgentVmStatus,
  }),
  boot: route({
    ...vmRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/boot',
    operationId: 'agentBootVm',
    summary: 'Prepare the VM (images, disk, rootfs, network) and start its VMM; an already running VM is adopted',
    status: 200,
    params: AgentVmParams,
    body: AgentVmSpec,
    response: AgentVmStatus,
  }),
  stop: route({
    ...vmRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/stop',
    operationId: 'agentStopVm',
    summary: 'Ask the guest to power off, kill the VMM after timeout_s',
    status: 200,
    params: AgentVmParams,
    body: AgentStopRequest,
    response: AgentVmStatus,
  }),
  pause: route({
    ...vmRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/pause',
    operationId: 'agentPauseVm',
    summary: "Freeze the VM's vCPUs",
    timeoutMs: 30 * SECOND,
    status: 200,
    params: AgentVmParams,
    response: AgentVmStatus,
  }),
  resume: route({
    ...vmRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/resume',
    operationId: 'agentResumeVm',
    summary: "Run the VM's vCPUs again",
    timeoutMs: 30 * SECOND,
    status: 200,
    params: AgentVmParams,
    response: AgentVmStatus,
  }),
  ctrlAltDel: route({
    ...vmRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/ctrl-alt-del',
    operationId: 'agentCtrlAltDelVm',
    summary: 'Send Ctrl-Alt-Del (QEMU: the ACPI power button)',
    timeoutMs: 30 * SECOND,
    status: 200,
    params: AgentVmParams,
    response: AgentVmStatus,
  }),
  remove: route({
    ...vmRoute,
    method: 'DELETE',
    path: '/agent/v1/vms/:id',
    operationId: 'agentDeleteVm',
    summary: 'Kill the VMM and remove everything of the VM on this host (a VM the host does not know is fine)',
    status: 204,
    params: AgentVmParams,
  }),
};

export const agentDeviceRoutes = {
  patchDrive: route({
    ...deviceRoute,
    method: 'PATCH',
    path: '/agent/v1/vms/:id/drives/:drive_id',
    operationId: 'agentPatchDrive',
    summary: "Change a running VM's drive rate limit",
    status: 200,
    params: AgentDriveParams,
    body: AgentDriveLimits,
    response: Ok,
  }),
  patchNic: route({
    ...deviceRoute,
    method: 'PATCH',
    path: '/agent/v1/vms/:id/nics/:iface_id',
    operationId: 'agentPatchNic',
    summary: "Change a running VM's NIC rate limits (tc on its TAP)",
    status: 200,
    params: AgentNicParams,
    body: AgentNicLimits,
    response: Ok,
  }),
  patchBalloon: route({
    ...deviceRoute,
    method: 'PATCH',
    path: '/agent/v1/vms/:id/balloon',
    operationId: 'agentPatchBalloon',
    summary: "Change a running VM's balloon size or statistics period",
    status: 200,
    params: AgentVmParams,
    body: AgentBalloonChange,
    response: Ok,
  }),
  balloonStats: route({
    ...deviceRoute,
    method: 'GET',
    path: '/agent/v1/vms/:id/balloon/statistics',
    operationId: 'agentBalloonStats',
    summary: "A running VM's balloon statistics",
    status: 200,
    params: AgentVmParams,
    response: BalloonStats,
  }),
};

export const agentSnapshotRoutes = {
  create: route({
    ...snapshotRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/snapshots/:sid',
    operationId: 'agentCreateSnapshot',
    summary: 'Save a snapshot of a running or paused VM into this host’s snapshot store',
    status: 200,
    params: AgentVmSnapshotParams,
    body: AgentSnapshotCreate,
    response: AgentSnapshotInfo,
  }),
  remove: route({
    ...snapshotRoute,
    method: 'DELETE',
    path: '/agent/v1/snapshots/:sid',
    operationId: 'agentDeleteSnapshot',
    summary: 'Delete a snapshot’s files',
    status: 204,
    params: AgentSnapshotParams,
  }),
  instantiate: route({
    ...snapshotRoute,
    method: 'POST',
    path: '/agent/v1/snapshots/:sid/instantiate',
    operationId: 'agentInstantiateSnapshot',
    summary: 'Boot a new VM (spec) restored from the snapshot, with its own identity',
    status: 200,
    params: AgentSnapshotParams,
    body: AgentSpecRequest,
    response: AgentVmStatus,
  }),
  clone: route({
    ...snapshotRoute,
    method: 'POST',
    path: '/agent/v1/vms/:id/clone',
    operationId: 'agentCloneVm',
    summary: 'Copy a stopped VM’s disk and boot the copy as a new VM (spec)',
    status: 200,
    params: AgentVmParams,
    body: AgentSpecRequest,
    response: AgentVmStatus,
  }),
};

export const agentMmdsRoutes = {
  put: route({
    ...mmdsRoute,
    method: 'PUT',
    path: '/agent/v1/vms/:id/mmds',
    operationId: 'agentPutMmds',
    summary: "Replace the VM's metadata and config; served to the guest from now on",
    status: 204,
    params: AgentVmParams,
    body: AgentMmds,
  }),
  remove: route({
    ...mmdsRoute,
    method: 'DELETE',
    path: '/agent/v1/vms/:id/mmds',
    operationId: 'agentDeleteMmds',
    summary: "Stop serving the VM's metadata",
    status: 204,
    params: AgentVmParams,
  }),
};

export const agentObserveRoutes = {
  logs: route({
    ...observeRoute,
    method: 'GET',
    path: '/agent/v1/vms/:id/logs',
    operationId: 'agentTailVmLog',
    summary: "The last lines of the VM's console or VMM log (text/plain); follow=true streams new lines",
    status: 200,
    params: AgentVmParams,
    query: AgentLogQuery,
    rawResponse: true,
  }),
  metrics: route({
    ...observeRoute,
    method: 'GET',
    path: '/agent/v1/vms/:id/metrics',
    operationId: 'agentVmMetrics',
    summary: 'One metrics sample of the VM, taken now',
    status: 200,
    params: AgentVmParams,
    response: VmMetricsSample,
  }),
  metricsWs: route({
    ...observeRoute,
    method: 'GET',
    path: '/agent/v1/vms/:id/metrics/ws',
    operationId: 'agentVmMetricsWs',
    summary: 'WebSocket: one VmMetricsSample JSON text frame per second',
    status: 200,
    params: AgentVmParams,
    websocket: true,
  }),
  consoleWs: route({
    ...observeRoute,
    method: 'GET',
    path: '/agent/v1/vms/:id/console/ws',
    operationId: 'agentVmConsoleWs',
    summary: 'WebSocket: terminal bytes as binary frames both ways, JSON control text frames (ConsoleControl)',
    status: 200,
    params: AgentVmParams,
    websocket: true,
  }),
};
