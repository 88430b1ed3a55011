import { type Static, Type } from 'typebox';
import { IdParams, Uuid } from './common.schema.ts';
import { route } from './route.ts';
import { CpuTemplate, Mac } from './vm.schema.ts';

/**
 * A VM's devices and machine settings, with Firecracker's field names. Every accepted setting is applied by
 * the host (at next boot, or live where the answer says `applied: 'live'`); what a host cannot do is refused.
 */
export const TokenBucket = Type.Object(
  {
    size: Type.Integer({ minimum: 0, maximum: 2 ** 40, description: 'Bucket size (bytes or operations)' }),
    one_time_burst: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 40 })),
    refill_time: Type.Integer({ minimum: 0, maximum: 3_600_000, description: 'ms to refill the whole bucket' }),
  },
  { additionalProperties: false },
);
export const RateLimiter = Type.Object(
  { bandwidth: Type.Optional(TokenBucket), ops: Type.Optional(TokenBucket) },
  { additionalProperties: false },
);
export type RateLimiter = Static<typeof RateLimiter>;

export const Applied = Type.Union([Type.Literal('live'), Type.Literal('next_boot')], {
  description: 'live: in effect on the running VM now; next_boot: stored, applied when the VM next starts',
});

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

export const HugePages = Type.Union([Type.Literal('None'), Type.Literal('2M')]);
export const MachineConfig = Type.Object(
  {
    vcpu: Type.Integer(),
    mem_mib: Type.Integer(),
    smt: Type.Boolean(),
    track_dirty_pages: Type.Boolean(),
    huge_pages: HugePages,
  },
  { additionalProperties: false },
);
export const UpdateMachineConfigRequest = Type.Object(
  {
    vcpu: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    mem_mib: Type.Optional(Type.Integer({ minimum: 128, maximum: 65536 })),
    smt: Type.Optional(Type.Boolean()),
    track_dirty_pages: Type.Optional(Type.Boolean()),
    huge_pages: Type.Optional(HugePages),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const CpuConfigRequest = Type.Object(
  {
    template: CpuTemplate,
    cpuid_modifiers: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 64 })),
    msr_modifiers: Type.Optional(Type.Array(Type.Object({}, { additionalProperties: true }), { maxItems: 64 })),
  },
  { additionalProperties: false },
);
export const CpuConfig = Type.Object({ template: CpuTemplate }, { additionalProperties: false });

export const VsockRequest = Type.Object(
  {
    guest_cid: Type.Integer({ minimum: 3, maximum: 0xfffffffe }),
    uds_path: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

export const Entropy = Type.Object({ rate_limiter: Type.Optional(RateLimiter) }, { additionalProperties: false });
export type Entropy = Static<typeof Entropy>;

export const Serial = Type.Object(
  {
    serial_out_path: Type.String({
      pattern: '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}\\.log$',
      description: "A file name inside the VM's own directory (never a host path) receiving the serial output",
    }),
  },
  { additionalProperties: false },
);
export type Serial = Static<typeof Serial>;

export const LoggerLevel = Type.Union([
  Type.Literal('Error'),
  Type.Literal('Warning'),
  Type.Literal('Info'),
  Type.Literal('Debug'),
  Type.Literal('Trace'),
  Type.Literal('Off'),
]);
export const LoggerConfig = Type.Object(
  {
    level: LoggerLevel,
    show_level: Type.Optional(Type.Boolean()),
    show_log_origin: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type LoggerConfig = Static<typeof LoggerConfig>;

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

/** Everything the PUT/PATCH endpoints below store, as they store it; a device never set is null. */
export const VmConfig = Type.Object(
  {
    machine: MachineConfig,
    cpu: CpuConfig,
    vsock: Type.Union([Type.Object({ guest_cid: Type.Integer() }, { additionalProperties: false }), Type.Null()]),
    entropy: Type.Union([Entropy, Type.Null()]),
    serial: Type.Union([Serial, Type.Null()]),
    logger: Type.Union([LoggerConfig, Type.Null()]),
    balloon: Type.Union([Balloon, Type.Null()]),
  },
  { additionalProperties: false },
);
export type VmConfig = Static<typeof VmConfig>;

/** The answer to every device change: the resulting setting and when it takes effect. */
const Changed = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({ item, applied: Applied }, { additionalProperties: false });

const DriveParams = Type.Object(
  { id: Uuid, drive_id: Type.String({ maxLength: 64 }) },
  { additionalProperties: false },
);
const NicParams = Type.Object({ id: Uuid, nic_id: Type.String({ maxLength: 64 }) }, { additionalProperties: false });

const r = { tag: 'vm-devices', auth: 'user' as const };

export const vmDeviceRoutes = {
  getConfig: route({
    ...r,
    method: 'GET',
    path: '/v1/vms/:id/config',
    operationId: 'getVmConfig',
    summary: 'Machine, CPU and device configuration as stored for the next boot',
    status: 200,
    params: IdParams,
    response: VmConfig,
  }),
  listDrives: route({
    ...r,
    method: 'GET',
    path: '/v1/vms/:id/drives',
    operationId: 'listDrives',
    summary: "A VM's extra drives",
    status: 200,
    params: IdParams,
    response: Type.Object({ items: Type.Array(Drive) }, { additionalProperties: false }),
  }),
  createDrive: route({
    ...r,
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
    ...r,
    method: 'GET',
    path: '/v1/vms/:id/drives/:drive_id',
    operationId: 'getDrive',
    summary: 'One drive',
    status: 200,
    params: DriveParams,
    response: Drive,
  }),
  updateDrive: route({
    ...r,
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
    ...r,
    method: 'DELETE',
    path: '/v1/vms/:id/drives/:drive_id',
    operationId: 'deleteDrive',
    summary: 'Detach and delete a drive (stopped VM only)',
    status: 204,
    params: DriveParams,
  }),
  listNics: route({
    ...r,
    method: 'GET',
    path: '/v1/vms/:id/nics',
    operationId: 'listNics',
    summary: "A VM's NICs",
    status: 200,
    params: IdParams,
    response: Type.Object({ items: Type.Array(Nic) }, { additionalProperties: false }),
  }),
  createNic: route({
    ...r,
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
    ...r,
    method: 'GET',
    path: '/v1/vms/:id/nics/:nic_id',
    operationId: 'getNic',
    summary: 'One NIC',
    status: 200,
    params: NicParams,
    response: Nic,
  }),
  updateNic: route({
    ...r,
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
    ...r,
    method: 'DELETE',
    path: '/v1/vms/:id/nics/:nic_id',
    operationId: 'deleteNic',
    summary: 'Remove a NIC and free its address (stopped VM only)',
    status: 204,
    params: NicParams,
  }),
  machineConfig: route({
    ...r,
    method: 'PATCH',
    path: '/v1/vms/:id/machine-config',
    operationId: 'updateMachineConfig',
    summary: 'vCPUs, memory, SMT, dirty page tracking, huge pages (stopped VM only)',
    status: 200,
    params: IdParams,
    body: UpdateMachineConfigRequest,
    response: Changed(MachineConfig),
  }),
  cpuConfig: route({
    ...r,
    method: 'PUT',
    path: '/v1/vms/:id/cpu-config',
    operationId: 'putCpuConfig',
    summary: 'CPU template (stopped VM only)',
    status: 200,
    params: IdParams,
    body: CpuConfigRequest,
    response: Changed(CpuConfig),
  }),
  vsock: route({
    ...r,
    method: 'PUT',
    path: '/v1/vms/:id/vsock',
    operationId: 'putVsock',
    summary: 'A vsock device (hosts with /dev/vhost-vsock only)',
    status: 200,
    params: IdParams,
    body: VsockRequest,
    response: Changed(VsockRequest),
  }),
  entropy: route({
    ...r,
    method: 'PUT',
    path: '/v1/vms/:id/entropy',
    operationId: 'putEntropy',
    summary: 'A virtio-rng device with an optional rate limit (stopped VM only)',
    status: 200,
    params: IdParams,
    body: Entropy,
    response: Changed(Entropy),
  }),
  serial: route({
    ...r,
    method: 'PUT',
    path: '/v1/vms/:id/serial',
    operationId: 'putSerial',
    summary: "Also write the serial output to a file in the VM's directory (stopped VM only)",
    status: 200,
    params: IdParams,
    body: Serial,
    response: Changed(Serial),
  }),
  logger: route({
    ...r,
    method: 'PUT',
    path: '/v1/vms/:id/logger',
    operationId: 'putLogger',
    summary: "The VMM log level (the VM's VMM log; stopped VM only)",
    status: 200,
    params: IdParams,
    body: LoggerConfig,
    response: Changed(LoggerConfig),
  }),
  putBalloon: route({
    ...r,
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
    ...r,
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
    ...r,
    method: 'PATCH',
    path: '/v1/vms/:id/balloon/statistics',
    operationId: 'patchBalloonStatistics',
    summary: 'Change the statistics polling interval (live on a running VM)',
    status: 200,
    params: IdParams,
    body: UpdateBalloonStatsRequest,
    response: Changed(Balloon),
  }),
  balloonStats: route({
    ...r,
    method: 'GET',
    path: '/v1/vms/:id/balloon/statistics',
    operationId: 'getBalloonStatistics',
    summary: "The balloon's size and the guest's memory statistics (running VM)",
    status: 200,
    params: IdParams,
    response: BalloonStats,
  }),
};
