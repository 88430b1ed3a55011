import { type Static, Type } from 'typebox';
import { AgentCloudInit } from './cloud-init.schema.ts';
import { IdParams, Ok, Sha256, Uuid } from './common.schema.ts';
import { VmmKind } from './host.schema.ts';
import { AgentService } from './oci.schema.ts';
import { route } from './route.ts';
import { CpuTemplate, Mac } from './vm.schema.ts';

/**
 * The manager ↔ agent contract (`/agent/v1` on each host, Bearer per-host secret both ways).
 * Not part of the public OpenAPI document.
 */
export const AgentImageRef = Type.Object(
  { image_id: Uuid, sha256: Sha256, size_bytes: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false },
);
export type AgentImageRef = Static<typeof AgentImageRef>;

const TokenBucket = Type.Object(
  {
    size: Type.Integer({ minimum: 0 }),
    one_time_burst: Type.Optional(Type.Integer({ minimum: 0 })),
    refill_time: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export const RateLimiterSchema = Type.Object(
  { bandwidth: Type.Optional(TokenBucket), ops: Type.Optional(TokenBucket) },
  { additionalProperties: false },
);

export const AgentNic = Type.Object(
  {
    iface_id: Type.String({ pattern: '^eth[0-9]{1,2}$' }),
    mac: Mac,
    ip: Type.String({ description: 'CIDR, e.g. 10.88.0.5/24' }),
    gateway: Type.String(),
    bridge: Type.String({ pattern: '^[a-zA-Z0-9_.-]{1,15}$' }),
    rx_rate_limiter: Type.Optional(RateLimiterSchema),
    tx_rate_limiter: Type.Optional(RateLimiterSchema),
  },
  { additionalProperties: false },
);
export type AgentNic = Static<typeof AgentNic>;

/** An extra drive: a blank ext4 of `size_mib` or a copy of an image, created in the VM directory once. */
export const AgentDrive = Type.Object(
  {
    drive_id: Type.String({ pattern: '^[a-z][a-z0-9_]{0,15}$' }),
    size_mib: Type.Optional(Type.Integer({ minimum: 1 })),
    image: Type.Optional(AgentImageRef),
    is_read_only: Type.Boolean(),
    cache_type: Type.Union([Type.Literal('Unsafe'), Type.Literal('Writeback')]),
    io_engine: Type.Union([Type.Literal('Sync'), Type.Literal('Async')]),
    rate_limiter: Type.Optional(RateLimiterSchema),
  },
  { additionalProperties: false },
);
export type AgentDrive = Static<typeof AgentDrive>;

export const AgentGuest = Type.Object(
  {
    hostname: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$' }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    ssh_authorized_keys: Type.Optional(Type.Array(Type.String())),
    token: Type.String({ description: 'Per-VM token the guest agent presents' }),
    install_agent: Type.Boolean(),
    cloud_init: Type.Optional(AgentCloudInit),
  },
  { additionalProperties: false },
);
export type AgentGuest = Static<typeof AgentGuest>;

export const AgentVmSpec = Type.Object(
  {
    vm_id: Uuid,
    operation_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'The manager operation this boot belongs to: a retry of it adopts the VMM it started',
      }),
    ),
    name: Type.String(),
    vmm: VmmKind,
    vcpu: Type.Integer({ minimum: 1, maximum: 32 }),
    mem_mib: Type.Integer({ minimum: 128 }),
    smt: Type.Boolean(),
    cpu_template: CpuTemplate,
    boot_args: Type.String(),
    kernel: AgentImageRef,
    initrd: Type.Optional(AgentImageRef),
    rootfs: AgentImageRef,
    nics: Type.Array(AgentNic, { maxItems: 8 }),
    guest: AgentGuest,
    drives: Type.Optional(Type.Array(AgentDrive, { maxItems: 16 })),
    service: Type.Optional(AgentService),
    balloon: Type.Optional(
      Type.Object(
        {
          amount_mib: Type.Integer({ minimum: 0 }),
          deflate_on_oom: Type.Boolean(),
          stats_polling_interval_s: Type.Integer({ minimum: 0 }),
        },
        { additionalProperties: false },
      ),
    ),
    entropy: Type.Optional(
      Type.Object({ rate_limiter: Type.Optional(RateLimiterSchema) }, { additionalProperties: false }),
    ),
    vsock: Type.Optional(Type.Object({ guest_cid: Type.Integer({ minimum: 3 }) }, { additionalProperties: false })),
    serial: Type.Optional(
      Type.Object(
        { serial_out_path: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,48}\\.log$' }) },
        { additionalProperties: false },
      ),
    ),
    logger: Type.Optional(
      Type.Object(
        {
          level: Type.Union([Type.Literal('Error'), Type.Literal('Warning'), Type.Literal('Info')]),
          /** What the console and VMM logs each keep on disk (live file and one rotated copy); the agent's default otherwise. */
          max_bytes: Type.Optional(Type.Integer({ minimum: 65536, maximum: 2 ** 34 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type AgentVmSpec = Static<typeof AgentVmSpec>;

export const AgentVmStatus = Type.Object(
  {
    id: Uuid,
    state: Type.Union([Type.Literal('running'), Type.Literal('paused'), Type.Literal('stopped')]),
    pid: Type.Union([Type.Integer(), Type.Null()]),
    booted_at: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type AgentVmStatus = Static<typeof AgentVmStatus>;

/** Pushed by an agent the moment a VMM it runs exits without being asked to. */
export const VmExitReport = Type.Object(
  {
    vm_id: Uuid,
    exit_code: Type.Union([Type.Integer(), Type.Null()]),
    signal: Type.Union([Type.String(), Type.Null()]),
    at: Type.String(),
  },
  { additionalProperties: false },
);
export type VmExitReport = Static<typeof VmExitReport>;

/** The guest agent's report, relayed by the host agent to the manager with the VM's token. */
export const GuestReportBody = Type.Object(
  {
    ip: Type.String({ maxLength: 64 }),
    hostname: Type.Optional(Type.String({ maxLength: 255 })),
    ready: Type.Optional(Type.Boolean()),
    agent_version: Type.Optional(Type.String({ maxLength: 64 })),
    boot_id: Type.Optional(Type.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

/** Routes agents and guests call on the manager (authenticated with the host secret or the VM token). */
export const agentCallbackRoutes = {
  vmExit: route({
    method: 'POST',
    path: '/v1/hosts/:id/vm-exits',
    operationId: 'reportVmExit',
    permission: 'host-agent',
    summary: 'An agent reports a VMM that exited on its own (host secret)',
    tag: 'hosts',
    auth: 'host',
    status: 200,
    params: IdParams,
    body: VmExitReport,
    response: Ok,
  }),
  guestIp: route({
    method: 'POST',
    path: '/v1/vms/:id/guest-ip',
    operationId: 'reportGuestIp',
    permission: 'guest-agent',
    summary: "The guest reports its address and readiness (that VM's token only)",
    tag: 'vms',
    auth: 'guest',
    status: 200,
    params: IdParams,
    body: GuestReportBody,
    response: Ok,
  }),
};
