import { agentCallbackRoutes } from './agent.schema.ts';
import {
  agentDeviceRoutes,
  agentMmdsRoutes,
  agentObserveRoutes,
  agentSnapshotRoutes,
  agentVmRoutes,
} from './agent-api.schema.ts';
import { alertRuleRoutes } from './alert.schema.ts';
import { authRoutes } from './auth.schema.ts';
import { eventRoutes } from './event.schema.ts';
import { functionRoutes } from './function.schema.ts';
import { agentFunctionRoutes, guestFunctionRoutes } from './function-runner.schema.ts';
import { guestAgentRoutes, guestEndpointRoutes } from './guest-api.schema.ts';
import { hostRoutes } from './host.schema.ts';
import { imageRoutes } from './image.schema.ts';
import { joinTokenRoutes } from './join-token.schema.ts';
import { logRoutes } from './logs.schema.ts';
import { mmdsRoutes } from './mmds.schema.ts';
import { operationRoutes } from './operation.schema.ts';
import { projectRoutes } from './project.schema.ts';
import { quotaRoutes } from './quota.schema.ts';
import type { RouteDef } from './route.ts';
import { snapshotRoutes } from './snapshot.schema.ts';
import { statsRoutes } from './stats.schema.ts';
import { templateRoutes } from './template.schema.ts';
import { userRoutes } from './user.schema.ts';
import { vmRoutes } from './vm.schema.ts';
import { vmDeviceRoutes } from './vm-devices.schema.ts';
import { vmObserveRoutes } from './vm-observe.schema.ts';
import { webhookRoutes } from './webhook.schema.ts';

/** Every route of the public API, grouped by feature. New features add their group here. */
export const api = {
  auth: authRoutes,
  users: userRoutes,
  projects: projectRoutes,
  hosts: hostRoutes,
  joinTokens: joinTokenRoutes,
  events: eventRoutes,
  images: imageRoutes,
  templates: templateRoutes,
  vms: vmRoutes,
  vmObserve: vmObserveRoutes,
  vmDevices: vmDeviceRoutes,
  operations: operationRoutes,
  snapshots: snapshotRoutes,
  mmds: mmdsRoutes,
  logs: logRoutes,
  stats: statsRoutes,
  webhooks: webhookRoutes,
  alertRules: alertRuleRoutes,
  quotas: quotaRoutes,
  functions: functionRoutes,
  agentCallbacks: agentCallbackRoutes,
};

export function allRoutes(): RouteDef[] {
  return Object.values(api).flatMap((group) => Object.values(group) as RouteDef[]);
}

/**
 * The manager → agent API, served by every host agent under `/agent/v1` (host secret). Internal: not in the
 * public OpenAPI document; the manager reaches agents only through a client over this table.
 */
export const agentApi = {
  vms: agentVmRoutes,
  devices: agentDeviceRoutes,
  snapshots: agentSnapshotRoutes,
  mmds: agentMmdsRoutes,
  observe: agentObserveRoutes,
  functions: agentFunctionRoutes,
};

/** The agent ↔ guest API: the host agent's guest endpoint, and the guest agent's own server in each VM. */
export const guestApi = {
  endpoint: guestEndpointRoutes,
  agent: guestAgentRoutes,
  functions: guestFunctionRoutes,
};

export function allAgentRoutes(): RouteDef[] {
  return Object.values(agentApi).flatMap((group) => Object.values(group) as RouteDef[]);
}
