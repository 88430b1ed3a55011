import { type Static, Type } from 'typebox';
import { IdParams } from './common.schema.ts';
import { route } from './route.ts';

/** The most MMDS data a VM may hold, as serialised JSON (Firecracker's default payload limit). */
export const MMDS_MAX_BYTES = 51200;

export const MmdsVersion = Type.Union([Type.Literal('V1'), Type.Literal('V2')]);
export type MmdsVersion = Static<typeof MmdsVersion>;

export const MmdsConfig = Type.Object(
  {
    version: Type.Optional(MmdsVersion),
    ipv4_address: Type.Optional(
      Type.String({
        pattern:
          '^169\\.254\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])\\.([0-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5])$',
        description: 'A link-local 169.254.x.y address; default 169.254.169.254',
      }),
    ),
    network_interfaces: Type.Array(Type.String({ pattern: '^eth[0-9]{1,2}$' }), { minItems: 1, maxItems: 8 }),
  },
  { additionalProperties: false },
);
export type MmdsConfig = Static<typeof MmdsConfig>;

export const MmdsConfigView = Type.Object(
  {
    version: MmdsVersion,
    ipv4_address: Type.String(),
    network_interfaces: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);
export type MmdsConfigView = Static<typeof MmdsConfigView>;

export const MmdsData = Type.Record(Type.String(), Type.Unknown(), { description: 'Any JSON object' });

export const mmdsRoutes = {
  put: route({
    method: 'PUT',
    path: '/v1/vms/:id/mmds',
    operationId: 'putMmds',
    permission: 'mmds:write',
    summary: "Replace the VM's metadata (served live to the guest)",
    tag: 'mmds',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: MmdsData,
    response: MmdsData,
  }),
  patch: route({
    method: 'PATCH',
    path: '/v1/vms/:id/mmds',
    operationId: 'patchMmds',
    permission: 'mmds:write',
    summary: "Change the VM's metadata with a JSON merge patch (RFC 7396)",
    tag: 'mmds',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: MmdsData,
    response: MmdsData,
  }),
  get: route({
    method: 'GET',
    path: '/v1/vms/:id/mmds',
    operationId: 'getMmds',
    permission: 'mmds:read',
    summary: "The VM's metadata",
    tag: 'mmds',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: MmdsData,
  }),
  getConfig: route({
    method: 'GET',
    path: '/v1/vms/:id/mmds/config',
    operationId: 'getMmdsConfig',
    permission: 'vm:read',
    summary: 'The MMDS version, address and interfaces in force (the defaults until a PUT changes them)',
    tag: 'mmds',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: MmdsConfigView,
  }),
  putConfig: route({
    method: 'PUT',
    path: '/v1/vms/:id/mmds/config',
    operationId: 'putMmdsConfig',
    permission: 'mmds:write',
    summary: 'Version (V1, or V2 with session tokens), address and interfaces the guest reaches MMDS on',
    tag: 'mmds',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: MmdsConfig,
    response: MmdsConfigView,
  }),
};

/** What the manager pushes to the VM's host agent: self-contained, so the agent serves it without asking back. */
export const AgentMmds = Type.Object(
  {
    config: MmdsConfigView,
    /** The addresses the VM's configured interfaces own: requests are matched to the VM by source address. */
    guest_ips: Type.Array(Type.String({ format: 'ipv4' }), { maxItems: 8 }),
    bridges: Type.Array(Type.String({ pattern: '^[a-zA-Z0-9_.-]{1,15}$' }), { maxItems: 8 }),
    data: MmdsData,
  },
  { additionalProperties: false },
);
export type AgentMmds = Static<typeof AgentMmds>;
