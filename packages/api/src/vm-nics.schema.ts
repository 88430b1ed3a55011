import { type Static, Type } from 'typebox';
import { IdParams, Uuid } from './common.schema.ts';
import { route } from './route.ts';
import { Mac } from './vm.schema.ts';
import { Changed, deviceRoute, RateLimiter } from './vm-device-common.schema.ts';

export const Nic = Type.Object(
  {
    iface_id: Type.String(),
    network: Type.String(),
    mac: Mac,
    ip: Type.String(),
    gateway: Type.String(),
    rx_rate_limiter: Type.Union([RateLimiter, Type.Null()]),
    tx_rate_limiter: Type.Union([RateLimiter, Type.Null()]),
  },
  { additionalProperties: false },
);
export type Nic = Static<typeof Nic>;

export const CreateNicRequest = Type.Object(
  {
    network: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,31}$' })),
    mac: Type.Optional(Mac),
    rx_rate_limiter: Type.Optional(RateLimiter),
    tx_rate_limiter: Type.Optional(RateLimiter),
  },
  { additionalProperties: false },
);
export type CreateNicRequest = Static<typeof CreateNicRequest>;

export const UpdateNicRequest = Type.Object(
  {
    rx_rate_limiter: Type.Optional(Type.Union([RateLimiter, Type.Null()])),
    tx_rate_limiter: Type.Optional(Type.Union([RateLimiter, Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);

const NicParams = Type.Object({ id: Uuid, nic_id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

export const nicRoutes = {
  listNics: route({
    ...deviceRoute,
    permission: 'vm:read',
    method: 'GET',
    path: '/v1/vms/:id/nics',
    operationId: 'listNics',
    summary: "A VM's NICs",
    status: 200,
    params: IdParams,
    response: Type.Object({ items: Type.Array(Nic) }, { additionalProperties: false }),
  }),
  createNic: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'POST',
    path: '/v1/vms/:id/nics',
    operationId: 'createNic',
    summary: 'Add a NIC on a network (stopped VM only)',
    status: 201,
    params: IdParams,
    body: CreateNicRequest,
    response: Changed(Nic),
  }),
  getNic: route({
    ...deviceRoute,
    permission: 'vm:read',
    method: 'GET',
    path: '/v1/vms/:id/nics/:nic_id',
    operationId: 'getNic',
    summary: 'One NIC',
    status: 200,
    params: NicParams,
    response: Nic,
  }),
  updateNic: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PATCH',
    path: '/v1/vms/:id/nics/:nic_id',
    operationId: 'updateNic',
    summary: "Change a NIC's rx/tx rate limiters (live on a running VM)",
    status: 200,
    params: NicParams,
    body: UpdateNicRequest,
    response: Changed(Nic),
  }),
  deleteNic: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'DELETE',
    path: '/v1/vms/:id/nics/:nic_id',
    operationId: 'deleteNic',
    summary: 'Remove a NIC and free its address (stopped VM only)',
    status: 204,
    params: NicParams,
  }),
};
