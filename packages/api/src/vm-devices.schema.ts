import { type Static, Type } from 'typebox';
import { IdParams } from './common.schema.ts';
import { route } from './route.ts';
import { Balloon, balloonRoutes } from './vm-balloon.schema.ts';
import { Changed, deviceRoute, RateLimiter } from './vm-device-common.schema.ts';
import { driveRoutes } from './vm-drives.schema.ts';
import { CpuConfig, MachineConfig, machineRoutes } from './vm-machine.schema.ts';
import { nicRoutes } from './vm-nics.schema.ts';

/**
 * A VM's devices and machine settings, with Firecracker's field names. Every accepted setting is applied by
 * the host (at next boot, or live where the answer says `applied: 'live'`); what a host cannot do is refused.
 * Drives, NICs, machine/CPU and the balloon have a file each beside this one; the single-setting devices
 * (vsock, entropy, serial, logger) with their PUT and DELETE, the stored configuration and the route table
 * of them all are here.
 */

export { Balloon, BalloonStats, UpdateBalloonRequest, UpdateBalloonStatsRequest } from './vm-balloon.schema.ts';
export { Applied, RateLimiter, TokenBucket } from './vm-device-common.schema.ts';
export { CreateDriveRequest, Drive, UpdateDriveRequest } from './vm-drives.schema.ts';
export {
  CpuConfig,
  CpuConfigRequest,
  HugePages,
  MachineConfig,
  UpdateMachineConfigRequest,
} from './vm-machine.schema.ts';
export { CreateNicRequest, Nic, UpdateNicRequest } from './vm-nics.schema.ts';

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
    max_bytes: Type.Optional(
      Type.Integer({
        minimum: 65536,
        maximum: 2 ** 34,
        description:
          'What the console and the VMM log each keep on disk, the live file and one rotated copy together ' +
          "(the agent's AGENT_LOG_MAX_BYTES, 8 MiB, when unset); from the next boot",
      }),
    ),
  },
  { additionalProperties: false },
);
export type LoggerConfig = Static<typeof LoggerConfig>;
/** Everything the PUT/PATCH endpoints below store, as they store it; a device never set (or removed with DELETE) is null. */
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
/** DELETE of a single-instance device: stopped VM only (409 requires_stop), 404 device_not_set when it has none. */
const removeDevice = (device: string, operationId: string, summary: string) =>
  route({
    ...deviceRoute,
    permission: 'vm:write',
    method: 'DELETE',
    path: `/v1/vms/:id/${device}`,
    operationId,
    summary: `${summary} from the next boot (stopped VM only; 404 device_not_set when there is none)`,
    status: 204,
    params: IdParams,
  });

export const vmDeviceRoutes = {
  getConfig: route({
    ...deviceRoute,
    permission: 'vm:read',
    method: 'GET',
    path: '/v1/vms/:id/config',
    operationId: 'getVmConfig',
    summary: 'Machine, CPU and device configuration as stored for the next boot',
    status: 200,
    params: IdParams,
    response: VmConfig,
  }),
  ...driveRoutes,
  ...nicRoutes,
  ...machineRoutes,
  vsock: route({
    ...deviceRoute,
    permission: 'vm:write',
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
    ...deviceRoute,
    permission: 'vm:write',
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
    ...deviceRoute,
    permission: 'vm:write',
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
    ...deviceRoute,
    permission: 'vm:write',
    method: 'PUT',
    path: '/v1/vms/:id/logger',
    operationId: 'putLogger',
    summary: "The VMM log level (the VM's VMM log; stopped VM only)",
    status: 200,
    params: IdParams,
    body: LoggerConfig,
    response: Changed(LoggerConfig),
  }),
  ...balloonRoutes,
  deleteVsock: removeDevice('vsock', 'deleteVsock', 'Remove the vsock device'),
  deleteEntropy: removeDevice('entropy', 'deleteEntropy', 'Remove the entropy device'),
  deleteSerial: removeDevice('serial', 'deleteSerial', 'Stop writing the serial output to a file'),
  deleteLogger: removeDevice('logger', 'deleteLogger', 'Drop the logger setting (QEMU logs warnings and errors)'),
};
