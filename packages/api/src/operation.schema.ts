import { type Static, Type } from 'typebox';
import { CursorQuery, IdParams, Page, ProjectFilter, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

/** Every long action on a VM is one of these; the manager refuses to start if one has no handler. */
export const OPERATION_KINDS: readonly OperationKind[] = [
  'create',
  'start',
  'restart',
  'stop',
  'delete',
  'instantiate',
  'clone',
  'snapshot',
  'snapshot_delete',
  'device',
];
export const OperationKind = Type.Union([
  Type.Literal('create'),
  Type.Literal('start'),
  Type.Literal('restart'),
  Type.Literal('stop'),
  Type.Literal('delete'),
  Type.Literal('instantiate'),
  Type.Literal('clone'),
  Type.Literal('snapshot'),
  Type.Literal('snapshot_delete'),
  Type.Literal('device'),
]);
export type OperationKind = Static<typeof OperationKind>;

export const OperationState = Type.Union(
  [
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
  ],
  { description: 'queued and running are live; the others are terminal and carry a reason' },
);
export type OperationState = Static<typeof OperationState>;

export const Operation = Type.Object(
  {
    id: Uuid,
    kind: OperationKind,
    vm_id: Type.Union([Uuid, Type.Null()]),
    state: OperationState,
    step: Type.String({ description: 'The last step it completed or is in; a resumed operation starts here' }),
    attempts: Type.Integer(),
    actor: Type.String(),
    error: Type.Union([Type.String(), Type.Null()], { description: 'The last attempt error' }),
    reason: Type.Union([Type.String(), Type.Null()], { description: 'Why it ended (terminal states)' }),
    lease_owner: Type.Union([Type.String(), Type.Null()]),
    lease_expires_at: Type.Union([Timestamp, Type.Null()]),
    created_at: Timestamp,
    updated_at: Timestamp,
    finished_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type Operation = Static<typeof Operation>;

export const ListOperationsQuery = Type.Object(
  {
    ...CursorQuery,
    vm_id: Type.Optional(Uuid),
    project_id: Type.Optional(ProjectFilter),
    state: Type.Optional(OperationState),
    kind: Type.Optional(OperationKind),
  },
  { additionalProperties: false },
);

export const operationRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/operations',
    operationId: 'listOperations',
    permission: 'operation:read',
    summary: 'Operations, newest first, by VM, state and kind, with cursor pagination',
    tag: 'operations',
    auth: 'user',
    status: 200,
    query: ListOperationsQuery,
    response: Page(Operation),
  }),
  get: route({
    method: 'GET',
    path: '/v1/operations/:id',
    operationId: 'getOperation',
    permission: 'operation:read',
    summary: 'One operation',
    tag: 'operations',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Operation,
  }),
};
