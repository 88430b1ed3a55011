import { type Static, Type } from 'typebox';
import { IdParams } from './common.schema.ts';
import { route } from './route.ts';
import { Changed, deviceRoute } from './vm-device-common.schema.ts';

export const Balloon = Type.Object(
  {
    amount_mib: Type.Integer({ minimum: 0, maximum: 65536, description: 'Balloon size: memory taken from the guest' }),
    deflate_on_oom: Type.Boolean(),
    stats_polling_interval_s: Type.Integer({ minimum: 0, maximum: 3600 }),
  },
  { additionalProperties: false },
);
export type Balloon = Static<typeof Balloon>;
export const UpdateBalloonRequest = Type.Object(
  { amount_mib: Type.Integer({ minimum: 0, maximum: 65536 }) },
  { additionalProperties: false },
);
export const UpdateBalloonStatsRequest = Type.Object(
  { stats_polling_interval_s: Type.Integer({ minimum: 0, maximum: 3600 }) },
  { additionalProperties: false },
);
export const BalloonStats = Type.Object(
  {
    target_mib: Type.Integer(),
    actual_mib: Type.Integer(),
    target_pages: Type.Integer(),
    actual_pages: Type.Integer(),
    total_memory: Type.Optional(Type.Integer()),
    free_memory: Type.Optional(Type.Integer()),
    available_memory: Type.Optional(Type.Integer()),
    disk_caches: Type.Optional(Type.Integer()),
    swap_in: Type.Optional(Type.Integer()),
    swap_out: Type.Optional(Type.Integer()),
    major_faults: Type.Optional(Type.Integer()),
    minor_faults: Type.Optional(Type.Integer()),
    hugetlb_allocations: Type.Optional(Type.Integer()),
    hugetlb_failures: Type.Optional(Type.Integer()),
  },
  { additionalProperties: false },
);
export type BalloonStats = Static<typeof BalloonStats>;
export const balloonRoutes = {
  putBalloon: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PUT',
    path: '/v1/vms/:id/balloon',
    operationId: 'putBalloon',
    summary: 'A memory balloon device (stopped VM only)',
    status: 200,
    params: IdParams,
    body: Balloon,
    response: Changed(Balloon),
  }),
  patchBalloon: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PATCH',
    path: '/v1/vms/:id/balloon',
    operationId: 'patchBalloon',
    summary: 'Inflate or deflate the balloon (live on a running VM)',
    status: 200,
    params: IdParams,
    body: UpdateBalloonRequest,
    response: Changed(Balloon),
  }),
  patchBalloonStats: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PATCH',
    path: '/v1/vms/:id/balloon/statistics',
    operationId: 'patchBalloonStatistics',
    summary: 'Change the statistics polling interval (live on a running VM)',
    status: 200,
    params: IdParams,
    body: UpdateBalloonStatsRequest,
    response: Changed(Balloon),
  }),
  deleteBalloon: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'DELETE',
    path: '/v1/vms/:id/balloon',
    operationId: 'deleteBalloon',
    summary: 'Remove the balloon device from the next boot (stopped VM only; 404 device_not_set when there is none)',
    status: 204,
    params: IdParams,
  }),
  balloonStats: route({
    ...deviceRoute,
    permission: 'vm:read',
    method: 'GET',
    path: '/v1/vms/:id/balloon/statistics',
    operationId: 'getBalloonStatistics',
    summary: "The balloon's size and the guest's memory statistics (running VM)",
    status: 200,
    params: IdParams,
    response: BalloonStats,
  }),
};
