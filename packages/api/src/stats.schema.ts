import { type Static, Type } from 'typebox';
import { route } from './route.ts';

export const StatCount = Type.Object(
  {
    key: Type.String({ description: 'The grouped value ("" when unset)' }),
    label: Type.String({ description: 'Display name (the host name for by_host)' }),
    count: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type StatCount = Static<typeof StatCount>;

export const Stats = Type.Object(
  {
    vms: Type.Object(
      {
        total: Type.Integer({ minimum: 0 }),
        by_state: Type.Array(StatCount),
        by_host: Type.Array(StatCount),
        by_owner: Type.Array(StatCount),
        by_environment: Type.Array(StatCount),
        by_tag: Type.Array(StatCount),
      },
      { additionalProperties: false },
    ),
    capacity: Type.Object(
      {
        hosts: Type.Integer({ minimum: 0 }),
        hosts_healthy: Type.Integer({ minimum: 0 }),
        vcpu_total: Type.Integer({ minimum: 0 }),
        vcpu_allocated: Type.Integer({ minimum: 0 }),
        mem_mib_total: Type.Integer({ minimum: 0 }),
        mem_mib_allocated: Type.Integer({ minimum: 0 }),
        cpu_overcommit: Type.Number({ exclusiveMinimum: 0, description: 'vCPUs the scheduler places per host CPU' }),
        mem_overcommit: Type.Number({
          exclusiveMinimum: 0,
          description: 'MiB the scheduler places per MiB of host memory',
        }),
      },
      {
        additionalProperties: false,
        description: 'Allocated counts VMs that hold resources (not stopped/error); schedulable = total × overcommit',
      },
    ),
  },
  { additionalProperties: false },
);
export type Stats = Static<typeof Stats>;

export const statsRoutes = {
  get: route({
    method: 'GET',
    path: '/v1/stats',
    operationId: 'getStats',
    permission: 'stats:read',
    summary: 'VM counts by state, host, owner, environment and tag, and capacity used; aggregated in the database',
    tag: 'stats',
    auth: 'user',
    status: 200,
    response: Stats,
  }),
};
