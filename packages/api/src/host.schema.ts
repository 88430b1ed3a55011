import { type Static, Type } from 'typebox';
import { CursorQuery, IdParams, Labels, Name, Ok, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

export const VmmKind = Type.Union([Type.Literal('qemu'), Type.Literal('firecracker')]);
export type VmmKind = Static<typeof VmmKind>;

export const HostCapacity = Type.Object(
  {
    cpus: Type.Integer({ minimum: 1 }),
    memory_mib: Type.Integer({ minimum: 1 }),
    disk_free_bytes: Type.Integer({ minimum: 0 }),
    disk_total_bytes: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type HostCapacity = Static<typeof HostCapacity>;

export const HostCapabilities = Type.Object(
  {
    vmm: Type.Array(VmmKind, { description: 'VMMs this host can run' }),
    kvm: Type.Boolean(),
    vsock: Type.Boolean(),
    tc: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type HostCapabilities = Static<typeof HostCapabilities>;

export const RunningVmSummary = Type.Object(
  { id: Uuid, state: Type.String({ maxLength: 32 }), pid: Type.Optional(Type.Integer()) },
  { additionalProperties: false },
);

export const Host = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    addr: Type.String({ description: 'Base URL of the host agent' }),
    health: Type.Union([Type.Literal('healthy'), Type.Literal('unreachable')]),
    capacity: Type.Union([HostCapacity, Type.Null()]),
    capabilities: Type.Union([HostCapabilities, Type.Null()]),
    labels: Labels,
    allocated: Type.Object({ vcpu: Type.Integer(), mem_mib: Type.Integer(), vms: Type.Integer() }),
    last_seen_at: Type.Union([Timestamp, Type.Null()]),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);
export type Host = Static<typeof Host>;

/** An agent's base URL: scheme, host and port only (no path, query or credentials). */
const agentUrl = (description?: string) =>
  Type.String({
    pattern: '^https?://[a-zA-Z0-9.\\[\\]:-]+(:[0-9]{1,5})?/?$',
    maxLength: 200,
    ...(description ? { description } : {}),
  });

export const RegisterHostRequest = Type.Object(
  {
    join_token: Type.String({ minLength: 1, maxLength: 256 }),
    name: Name,
    secret: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 256,
        description: "Re-registering a host name that exists: that host's current secret (else 409 host_exists)",
      }),
    ),
    addr: agentUrl(),
    labels: Type.Optional(Labels),
    capacity: Type.Optional(HostCapacity),
    capabilities: Type.Optional(HostCapabilities),
  },
  { additionalProperties: false },
);
export type RegisterHostRequest = Static<typeof RegisterHostRequest>;

export const RegisterHostResponse = Type.Object(
  { id: Uuid, secret: Type.String({ description: 'Per-host secret; sent on every later agent call' }) },
  { additionalProperties: false },
);

export const HeartbeatRequest = Type.Object(
  {
    capacity: HostCapacity,
    capabilities: HostCapabilities,
    vms: Type.Array(RunningVmSummary, { maxItems: 10000 }),
    addr: Type.Optional(agentUrl('The URL the agent serves on now; an agent restarted elsewhere says so here')),
  },
  { additionalProperties: false },
);
export type HeartbeatRequest = Static<typeof HeartbeatRequest>;

/** The common name of the manager's client certificate: the only client an agent's API answers. */
export const MANAGER_CLIENT_CN = 'nqvm-manager';

export const HostCertificateRequest = Type.Object(
  {
    public_key: Type.String({
      minLength: 1,
      maxLength: 2000,
      description: "The agent's public key (SPKI PEM, EC P-256 or Ed25519); its private key never leaves the host",
    }),
  },
  { additionalProperties: false },
);
export type HostCertificateRequest = Static<typeof HostCertificateRequest>;

export const HostCertificate = Type.Object(
  {
    certificate: Type.String({ description: "The agent's TLS server certificate (PEM), issued by the manager's CA" }),
    ca_certificate: Type.String({
      description: "The manager's CA (PEM): the agent accepts only client certificates it issued",
    }),
    not_after: Timestamp,
  },
  { additionalProperties: false },
);
export type HostCertificate = Static<typeof HostCertificate>;

export const hostRoutes = {
  register: route({
    method: 'POST',
    path: '/v1/hosts/register',
    operationId: 'registerHost',
    permission: 'public',
    summary: 'Register a host agent with the join token; returns its id and per-host secret',
    tag: 'hosts',
    auth: 'public',
    status: 201,
    body: RegisterHostRequest,
    response: RegisterHostResponse,
  }),
  heartbeat: route({
    method: 'POST',
    path: '/v1/hosts/:id/heartbeat',
    operationId: 'hostHeartbeat',
    permission: 'host-agent',
    summary: 'Report capacity, capabilities and running VMs (host secret)',
    tag: 'hosts',
    auth: 'host',
    status: 200,
    params: IdParams,
    body: HeartbeatRequest,
    response: Ok,
  }),
  certificate: route({
    method: 'POST',
    path: '/v1/hosts/:id/certificate',
    operationId: 'issueHostCertificate',
    permission: 'host-agent',
    summary:
      "Issue the agent's TLS certificate for its public key (host secret); the manager calls it only over mutual TLS",
    tag: 'hosts',
    auth: 'host',
    status: 201,
    params: IdParams,
    body: HostCertificateRequest,
    response: HostCertificate,
  }),
  list: route({
    method: 'GET',
    path: '/v1/hosts',
    operationId: 'listHosts',
    permission: 'host:read',
    summary: 'List hosts with health, capacity and allocation, by name, with cursor pagination',
    tag: 'hosts',
    auth: 'user',
    status: 200,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(Host),
  }),
  get: route({
    method: 'GET',
    path: '/v1/hosts/:id',
    operationId: 'getHost',
    permission: 'host:read',
    summary: 'One host',
    tag: 'hosts',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Host,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/hosts/:id',
    operationId: 'deleteHost',
    permission: 'host:write',
    summary: 'Remove a host (refused while it has VMs)',
    tag: 'hosts',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
};
