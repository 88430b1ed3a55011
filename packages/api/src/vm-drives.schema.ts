import { type Static, Type } from 'typebox';
import { IdParams, Uuid } from './common.schema.ts';
import { route } from './route.ts';
import { Changed, deviceRoute, RateLimiter } from './vm-device-common.schema.ts';

const DriveId = Type.String({ pattern: '^[a-z][a-z0-9_]{0,15}$', description: 'rootfs and tools are reserved' });
const CacheType = Type.Union([Type.Literal('Unsafe'), Type.Literal('Writeback')]);
const IoEngine = Type.Union([Type.Literal('Sync'), Type.Literal('Async')]);

export const Drive = Type.Object(
  {
    drive_id: Type.String(),
    size_mib: Type.Union([Type.Integer(), Type.Null()]),
    image_id: Type.Union([Uuid, Type.Null()]),
    is_read_only: Type.Boolean(),
    cache_type: CacheType,
    io_engine: IoEngine,
    rate_limiter: Type.Union([RateLimiter, Type.Null()]),
    guest_device: Type.String({ description: 'Where the guest sees it, e.g. /dev/vdb' }),
  },
  { additionalProperties: false },
);
export type Drive = Static<typeof Drive>;

export const CreateDriveRequest = Type.Object(
  {
    drive_id: DriveId,
    size_mib: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 * 1024, description: 'A new blank ext4' })),
    image_id: Type.Optional(Uuid),
    is_read_only: Type.Optional(Type.Boolean()),
    cache_type: Type.Optional(CacheType),
    io_engine: Type.Optional(IoEngine),
    rate_limiter: Type.Optional(RateLimiter),
  },
  { additionalProperties: false },
);
export type CreateDriveRequest = Static<typeof CreateDriveRequest>;

export const UpdateDriveRequest = Type.Object(
  { rate_limiter: Type.Union([RateLimiter, Type.Null()]) },
  { additionalProperties: false },
);

const DriveParams = Type.Object(
  { id: Uuid, drive_id: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);

export const driveRoutes = {
  listDrives: route({
    ...deviceRoute,
    permission: 'vm:read',
    method: 'GET',
    path: '/v1/vms/:id/drives',
    operationId: 'listDrives',
    summary: "A VM's extra drives",
    status: 200,
    params: IdParams,
    response: Type.Object({ items: Type.Array(Drive) }, { additionalProperties: false }),
  }),
  createDrive: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'POST',
    path: '/v1/vms/:id/drives',
    operationId: 'createDrive',
    summary: 'Add a drive (stopped VM: attached at next boot; running: 409 requires_stop)',
    status: 201,
    params: IdParams,
    body: CreateDriveRequest,
    response: Changed(Drive),
  }),
  getDrive: route({
    ...deviceRoute,
    permission: 'vm:read',
    method: 'GET',
    path: '/v1/vms/:id/drives/:drive_id',
    operationId: 'getDrive',
    summary: 'One drive',
    status: 200,
    params: DriveParams,
    response: Drive,
  }),
  updateDrive: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PATCH',
    path: '/v1/vms/:id/drives/:drive_id',
    operationId: 'updateDrive',
    summary: "Change a drive's rate limiter (live on a running VM)",
    status: 200,
    params: DriveParams,
    body: UpdateDriveRequest,
    response: Changed(Drive),
  }),
  deleteDrive: route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'DELETE',
    path: '/v1/vms/:id/drives/:drive_id',
    operationId: 'deleteDrive',
    summary: 'Detach and delete a drive (stopped VM only)',
    status: 204,
    params: DriveParams,
  }),
};
