import { agentCallbackRoutes } from './agent.schema.ts';
import { authRoutes } from './auth.schema.ts';
import { eventRoutes } from './event.schema.ts';
import { hostRoutes } from './host.schema.ts';
import { imageRoutes } from './image.schema.ts';
import { logRoutes } from './logs.schema.ts';
import { mmdsRoutes } from './mmds.schema.ts';
import type { RouteDef } from './route.ts';
import { snapshotRoutes } from './snapshot.schema.ts';
import { statsRoutes } from './stats.schema.ts';
import { templateRoutes } from './template.schema.ts';
import { vmRoutes } from './vm.schema.ts';
import { vmDeviceRoutes } from './vm-devices.schema.ts';
import { vmObserveRoutes } from './vm-observe.schema.ts';

/** Every route of the public API, grouped by feature. New features add their group here. */
export const api = {
  auth: authRoutes,
  hosts: hostRoutes,
  events: eventRoutes,
  images: imageRoutes,
  templates: templateRoutes,
  vms: vmRoutes,
  vmObserve: vmObserveRoutes,
  vmDevices: vmDeviceRoutes,
  snapshots: snapshotRoutes,
  mmds: mmdsRoutes,
  logs: logRoutes,
  stats: statsRoutes,
  agentCallbacks: agentCallbackRoutes,
};

export function allRoutes(): RouteDef[] {
  return Object.values(api).flatMap((group) => Object.values(group) as RouteDef[]);
}
