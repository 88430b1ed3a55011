import { type Static, Type } from 'typebox';
import { GuestReportBody } from './agent.schema.ts';
import { Ok } from './common.schema.ts';
import { route } from './route.ts';

/**
 * The agent ↔ guest contract. Internal, never in the public OpenAPI document. Two servers:
 * - the host agent's guest endpoint (one listener per bridge, on the gateway address), called by guest agents
 *   with their VM token;
 * - the guest agent inside each VM (port 9000), called by its host agent: `/health` and `/metrics` without
 *   credentials, `/identity`, `/report` and `/console-size` with the VM token.
 */

const GuestVmParams = Type.Object(
  { id: Type.String({ maxLength: 64, description: 'The VM id' }) },
  { additionalProperties: false },
);

export const GuestAgentHealth = Type.Object(
  {
    status: Type.Literal('ok'),
    version: Type.String(),
    uptime_s: Type.Integer({ minimum: 0, description: "The guest agent's own uptime, not the VM's" }),
  },
  { additionalProperties: false },
);
export type GuestAgentHealth = Static<typeof GuestAgentHealth>;

const Count = Type.Number({ minimum: 0 });
/** What the guest agent serves at `GET /metrics` (flat names kept from the original guest agent). */
export const GuestAgentMetrics = Type.Object({
  cpu_usage_percent: Count,
  cpu_count: Count,
  memory_usage_percent: Count,
  memory_used_kb: Count,
  memory_total_kb: Count,
  memory_available_kb: Count,
  uptime_seconds: Count,
  load_average: Type.Object({ one: Count, five: Count, fifteen: Count }),
  process_count: Count,
  disk: Type.Object({ total_bytes: Count, used_bytes: Count, available_bytes: Count, usage_percent: Count }),
  network: Type.Object({
    interfaces: Type.Array(
      Type.Object({
        name: Type.String(),
        rx_bytes: Count,
        tx_bytes: Count,
        rx_packets: Count,
        tx_packets: Count,
      }),
    ),
    rx_bytes: Count,
    tx_bytes: Count,
  }),
  sampled_at: Type.String({ format: 'date-time' }),
});
export type GuestAgentMetrics = Static<typeof GuestAgentMetrics>;

/** A new identity for a guest restored from a snapshot; every value reaches `ip` argv in the guest. */
export const GuestIdentity = Type.Object(
  {
    vm_id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }),
    token: Type.String({ pattern: '^[\\x21-\\x7e]{1,4096}$' }),
    hostname: Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$' }),
    ip: Type.String({ description: 'CIDR, e.g. 10.88.0.7/24' }),
    gateway: Type.String({ format: 'ipv4' }),
    mac: Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' }),
    old_ip: Type.String({ format: 'ipv4', description: 'The address the clone still has from its source' }),
    entropy: Type.String({ pattern: '^[A-Za-z0-9+/=]{0,1024}$', description: 'Random bytes (base64) for its pool' }),
  },
  { additionalProperties: false },
);
export type GuestIdentity = Static<typeof GuestIdentity>;

/** Asks the guest agent to report now: no fields (a JSON object, as every guest call sends). */
export const GuestReportNow = Type.Object({}, { additionalProperties: false });
export type GuestReportNow = Static<typeof GuestReportNow>;

export const GuestConsoleSize = Type.Object(
  { cols: Type.Integer({ minimum: 20, maximum: 500 }), rows: Type.Integer({ minimum: 5, maximum: 300 }) },
  { additionalProperties: false },
);
export type GuestConsoleSize = Static<typeof GuestConsoleSize>;

export const GuestConsoleSized = Type.Object(
  { ok: Type.Literal(true), tty: Type.String({ description: 'The tty it resized, e.g. ttyS0' }) },
  { additionalProperties: false },
);

/** Served by the host agent to its guests (`http://<bridge gateway>:<guest port>`). */
export const guestEndpointRoutes = {
  report: route({
    method: 'POST',
    path: '/guest/v1/vms/:id/report',
    operationId: 'guestReport',
    summary: "The guest reports its address and readiness; relayed to the manager with the guest's token",
    tag: 'guest-endpoint',
    auth: 'guest',
    status: 200,
    timeoutMs: 10_000,
    params: GuestVmParams,
    body: GuestReportBody,
    response: Ok,
  }),
};

/** Served by the guest agent inside each VM (port 9000), called by its host agent. */
export const guestAgentRoutes = {
  health: route({
    method: 'GET',
    path: '/health',
    operationId: 'guestAgentHealth',
    summary: 'The guest agent answers',
    tag: 'guest-agent',
    auth: 'public',
    status: 200,
    timeoutMs: 2000,
    response: GuestAgentHealth,
  }),
  metrics: route({
    method: 'GET',
    path: '/metrics',
    operationId: 'guestAgentMetrics',
    summary: "The guest's CPU, memory, disk and network figures",
    tag: 'guest-agent',
    auth: 'public',
    status: 200,
    timeoutMs: 700,
    response: GuestAgentMetrics,
  }),
  identity: route({
    method: 'POST',
    path: '/identity',
    operationId: 'guestAgentIdentity',
    summary: 'Take a new identity (a clone restored from a snapshot); applied after the 202 went out',
    tag: 'guest-agent',
    auth: 'guest',
    status: 202,
    timeoutMs: 3000,
    body: GuestIdentity,
    response: Ok,
  }),
  report: route({
    method: 'POST',
    path: '/report',
    operationId: 'guestAgentReport',
    summary:
      'Report to the host agent now (a restored instance its host has just registered), not at the next interval',
    tag: 'guest-agent',
    auth: 'guest',
    status: 202,
    timeoutMs: 2000,
    body: GuestReportNow,
    response: Ok,
  }),
  consoleSize: route({
    method: 'POST',
    path: '/console-size',
    operationId: 'guestAgentConsoleSize',
    summary: "Set the serial console's window size (stty on the console tty)",
    tag: 'guest-agent',
    auth: 'guest',
    status: 200,
    timeoutMs: 3000,
    body: GuestConsoleSize,
    response: GuestConsoleSized,
  }),
};
