import { type Static, Type } from 'typebox';
import { CursorQuery, Description, IdParams, Name, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';
import { Template } from './template.schema.ts';
import { Vm } from './vm.schema.ts';

export const SnapshotType = Type.Union([Type.Literal('Full'), Type.Literal('Diff')], {
  description:
    'Full: device state, every guest RAM page and the disk; Diff: device state, the RAM pages changed since its parent snapshot, and the disk (a full sparse copy)',
});
export type SnapshotType = Static<typeof SnapshotType>;

export const SnapshotState = Type.Union([Type.Literal('creating'), Type.Literal('ready'), Type.Literal('error')]);
export type SnapshotState = Static<typeof SnapshotState>;

export const Snapshot = Type.Object(
  {
    id: Uuid,
    vm_id: Type.Union([Uuid, Type.Null()], { description: 'The source VM; null once it was deleted' }),
    host_id: Type.Union([Uuid, Type.Null()]),
    project_id: Type.String({ format: 'uuid', description: "Its source VM's project" }),
    name: Type.String(),
    snapshot_type: SnapshotType,
    parent_id: Type.Union([Uuid, Type.Null()]),
    state: SnapshotState,
    state_bytes: Type.Integer({
      description: 'Saved device state and guest RAM (a Diff: only its changed pages), bytes on disk',
    }),
    disk_bytes: Type.Integer({ description: 'The copied disk, allocated bytes on disk' }),
    source_spec: Type.Record(Type.String(), Type.Unknown(), { description: "The source VM's spec when saved" }),
    error: Type.Union([Type.String(), Type.Null()]),
    created_at: Timestamp,
    operation_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'The `snapshot` operation that saves it (create answers); follow it at /v1/operations/{id}',
      }),
    ),
  },
  { additionalProperties: false },
);
export type Snapshot = Static<typeof Snapshot>;

export const CreateSnapshotRequest = Type.Object(
  {
    name: Name,
    snapshot_type: Type.Optional(SnapshotType),
    parent_id: Type.Optional(
      Type.String({ format: 'uuid', description: 'Diff only: the snapshot of this VM it builds on (default: latest)' }),
    ),
  },
  { additionalProperties: false },
);
export type CreateSnapshotRequest = Static<typeof CreateSnapshotRequest>;

export const NameRequest = Type.Object({ name: Name }, { additionalProperties: false });

export const SaveTemplateRequest = Type.Object(
  { name: Name, description: Type.Optional(Description) },
  { additionalProperties: false },
);

export const snapshotRoutes = {
  create: route({
    method: 'POST',
    path: '/v1/vms/:id/snapshots',
    operationId: 'createSnapshot',
    permission: 'snapshot:write',
    summary:
      'Pause, save memory, device and disk state, resume (a running VM only): a durable `snapshot` operation, answered when it ends (state ready); one still saving after 60 s is answered in state creating, to follow by its operation_id',
    tag: 'snapshots',
    auth: 'user',
    status: 201,
    params: IdParams,
    body: CreateSnapshotRequest,
    response: Snapshot,
  }),
  listForVm: route({
    method: 'GET',
    path: '/v1/vms/:id/snapshots',
    operationId: 'listVmSnapshots',
    permission: 'snapshot:read',
    summary: "A VM's snapshots, newest first, with cursor pagination",
    tag: 'snapshots',
    auth: 'user',
    status: 200,
    params: IdParams,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(Snapshot),
  }),
  get: route({
    method: 'GET',
    path: '/v1/snapshots/:id',
    operationId: 'getSnapshot',
    permission: 'snapshot:read',
    summary: 'One snapshot: type, sizes, parent, source spec',
    tag: 'snapshots',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Snapshot,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/snapshots/:id',
    operationId: 'deleteSnapshot',
    permission: 'snapshot:write',
    summary:
      'Delete a snapshot and its files, a durable `snapshot_delete` operation (409 while an instance is restoring from it or a Diff builds on it)',
    tag: 'snapshots',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
  instantiate: route({
    method: 'POST',
    path: '/v1/snapshots/:id/instantiate',
    operationId: 'instantiateSnapshot',
    permission: 'vm:write',
    summary: 'A new VM (own disk copy, new MAC, IP and hostname) resuming where the snapshot left off',
    tag: 'snapshots',
    auth: 'user',
    status: 202,
    params: IdParams,
    body: NameRequest,
    response: Vm,
  }),
  clone: route({
    method: 'POST',
    path: '/v1/vms/:id/clone',
    operationId: 'cloneVm',
    permission: 'vm:write',
    summary: 'Copy a VM: a stopped one by its disk, a running one through a snapshot',
    tag: 'vms',
    auth: 'user',
    status: 202,
    params: IdParams,
    body: NameRequest,
    response: Vm,
  }),
  saveTemplate: route({
    method: 'POST',
    path: '/v1/vms/:id/template',
    operationId: 'saveVmAsTemplate',
    permission: 'template:write',
    summary: "Save the VM's spec as a template",
    tag: 'templates',
    auth: 'user',
    status: 201,
    params: IdParams,
    body: SaveTemplateRequest,
    response: Template,
  }),
};

/** Manager → agent: save a snapshot of a VM on its host into the agent's snapshot store. */
export const AgentSnapshotCreate = Type.Object(
  { snapshot_type: SnapshotType, parent_id: Type.Optional(Uuid) },
  { additionalProperties: false },
);
export type AgentSnapshotCreate = Static<typeof AgentSnapshotCreate>;

export const AgentSnapshotInfo = Type.Object(
  {
    state_bytes: Type.Integer(),
    disk_bytes: Type.Integer(),
    save_ms: Type.Integer({ description: 'From pause to the state file written' }),
    paused_ms: Type.Integer({ description: 'How long the guest was frozen' }),
  },
  { additionalProperties: false },
);
export type AgentSnapshotInfo = Static<typeof AgentSnapshotInfo>;
