import { type Static, Type } from 'typebox';
import { CursorQuery, IdParams, Nullable, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

export const RuntimeName = Type.Union([Type.Literal('node20'), Type.Literal('python3')], {
  description: 'node20: Node.js 20, handler `file.export` (CommonJS or ESM); python3: handler `module.function`',
});
export type RuntimeName = Static<typeof RuntimeName>;

export const FunctionName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
  description: 'A DNS label (lower-case letters, digits, dashes); unique, it names the HTTP trigger /fn/{name}/',
});

const FilePath = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^(?!\\.{1,2}(/|$))(?!.*/\\.{1,2}(/|$))[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$',
  description: 'A relative path inside the function directory (no `.` or `..` segment, no leading `/`)',
});

export const FunctionCodeFiles = Type.Record(FilePath, Type.String({ maxLength: 1048576 }), {
  maxProperties: 64,
  description: 'path → UTF-8 content: the function code (at most 64 files, 1 MiB together)',
});

const EnvName = Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' });
export const FunctionEnvVars = Type.Record(EnvName, Type.String({ maxLength: 16384 }), { maxProperties: 64 });

const Handler = Type.String({
  minLength: 1,
  maxLength: 128,
  pattern: '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\\.[A-Za-z_$][A-Za-z0-9_$]*$',
  description: '`file.export` (node20, e.g. index.handler → index.js / index.mjs) or `module.function` (python3)',
});

const Vcpu = Type.Integer({ minimum: 1, maximum: 8 });
const MemMib = Type.Integer({ minimum: 128, maximum: 8192 });
const TimeoutMs = Type.Integer({ minimum: 100, maximum: 900_000 });
const Concurrency = Type.Integer({
  minimum: 1,
  maximum: 64,
  description: 'Invocations that run at once; more wait in the queue',
});
const QueueLimit = Type.Integer({
  minimum: 0,
  maximum: 1000,
  description: 'Invocations that may wait for a slot; one more is refused with 429 function_queue_full',
});
const HttpToken = Type.String({
  minLength: 16,
  maxLength: 256,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'Bearer token the HTTP trigger demands (stored hashed, never returned)',
});

export const SnapshotStateOfVersion = Type.Union(
  [Type.Literal('none'), Type.Literal('building'), Type.Literal('ready'), Type.Literal('failed')],
  { description: 'The warm snapshot of the version: booted once with the code loaded, then saved (Full)' },
);

export const FunctionResource = Type.Object(
  {
    id: Uuid,
    project_id: Uuid,
    name: FunctionName,
    description: Type.String(),
    runtime: RuntimeName,
    handler: Type.String(),
    files: FunctionCodeFiles,
    vcpu: Type.Integer(),
    mem_mib: Type.Integer(),
    timeout_ms: Type.Integer(),
    env: FunctionEnvVars,
    secret_names: Type.Array(Type.String(), {
      description: 'Names of the secret environment variables (values are encrypted at rest and never returned)',
    }),
    network: Type.Boolean({ description: 'false (default): the instances get no network interface' }),
    concurrency: Type.Integer(),
    queue_limit: Type.Integer(),
    http_enabled: Type.Boolean({ description: 'Whether /fn/{name}/* invokes it' }),
    http_token_set: Type.Boolean({ description: 'Whether the HTTP trigger demands a bearer token' }),
    version: Type.Integer({ description: 'The current version number (1 on create, +1 on every change)' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type FunctionResource = Static<typeof FunctionResource>;

const SecretsPatch = Type.Record(EnvName, Nullable(Type.String({ maxLength: 16384 })), {
  maxProperties: 64,
  description: 'Secret environment variables: a value sets one, null removes one, names not given are kept',
});

const CodeFields = {
  code: Type.Optional(
    Type.String({
      maxLength: 1048576,
      description: 'One file of code: index.js (node20) or main.py (python3); or give `files`',
    }),
  ),
  files: Type.Optional(FunctionCodeFiles),
  handler: Type.Optional(Handler),
};

export const CreateFunctionRequest = Type.Object(
  {
    name: FunctionName,
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    runtime: RuntimeName,
    ...CodeFields,
    vcpu: Type.Optional({ ...Vcpu, default: 1 }),
    mem_mib: Type.Optional({ ...MemMib, default: 256 }),
    timeout_ms: Type.Optional({ ...TimeoutMs, default: 10_000 }),
    env: Type.Optional(FunctionEnvVars),
    secrets: Type.Optional(SecretsPatch),
    network: Type.Optional(Type.Boolean({ default: false })),
    concurrency: Type.Optional({ ...Concurrency, default: 4 }),
    queue_limit: Type.Optional({ ...QueueLimit, default: 16 }),
    http_enabled: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Whether /fn/{name}/* invokes it without an API credential (off unless asked for)',
      }),
    ),
    http_token: Type.Optional(HttpToken),
    project_id: Type.Optional({ ...Uuid, description: 'The project it belongs to (default: the default project)' }),
  },
  { additionalProperties: false },
);
export type CreateFunctionRequest = Static<typeof CreateFunctionRequest>;

export const UpdateFunctionRequest = Type.Object(
  {
    description: Type.Optional(Type.String({ maxLength: 1024 })),
    ...CodeFields,
    vcpu: Type.Optional(Vcpu),
    mem_mib: Type.Optional(MemMib),
    timeout_ms: Type.Optional(TimeoutMs),
    env: Type.Optional(FunctionEnvVars),
    secrets: Type.Optional(SecretsPatch),
    network: Type.Optional(Type.Boolean()),
    concurrency: Type.Optional(Concurrency),
    queue_limit: Type.Optional(QueueLimit),
    http_enabled: Type.Optional(Type.Boolean()),
    http_token: Type.Optional(Nullable(HttpToken, { description: 'null removes the token' })),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type UpdateFunctionRequest = Static<typeof UpdateFunctionRequest>;

export const FunctionVersion = Type.Object(
  {
    id: Uuid,
    function_id: Uuid,
    version: Type.Integer(),
    runtime: RuntimeName,
    handler: Type.String(),
    files: FunctionCodeFiles,
    vcpu: Type.Integer(),
    mem_mib: Type.Integer(),
    timeout_ms: Type.Integer(),
    network: Type.Boolean(),
    env: FunctionEnvVars,
    secret_names: Type.Array(Type.String()),
    snapshot_state: SnapshotStateOfVersion,
    snapshot_id: Type.Union([Uuid, Type.Null()]),
    created_at: Timestamp,
  },
  { additionalProperties: false },
);
export type FunctionVersion = Static<typeof FunctionVersion>;

export const InvocationState = Type.Union(
  [
    Type.Literal('queued'),
    Type.Literal('running'),
    Type.Literal('succeeded'),
    Type.Literal('failed'),
    Type.Literal('timed_out'),
  ],
  { description: 'queued and running are live; failed carries error.reason (exception, out_of_memory, …)' },
);
export type InvocationState = Static<typeof InvocationState>;

export const InvocationStart = Type.Union([Type.Literal('cold'), Type.Literal('warm'), Type.Literal('pool')], {
  description:
    'cold: a VM booted for it; warm: an instance restored from the version snapshot; pool: a paused pre-restored instance',
});
export type InvocationStart = Static<typeof InvocationStart>;

export const InvocationError = Type.Object(
  {
    type: Type.String({ description: 'The exception class (Error, ValueError, …) or the platform reason' }),
    message: Type.String(),
    stack: Type.Union([Type.String(), Type.Null()]),
    reason: Type.String({
      description:
        'exception | timeout | out_of_memory | output_too_large | killed (the runner) | runtime (the instance could not be started, loaded or reached)',
    }),
  },
  { additionalProperties: false },
);
export type InvocationError = Static<typeof InvocationError>;

export const Invocation = Type.Object(
  {
    id: Uuid,
    function_id: Uuid,
    version: Type.Integer(),
    state: InvocationState,
    trigger: Type.Union([Type.Literal('api'), Type.Literal('http')]),
    start: Type.Union([InvocationStart, Type.Null()], { description: 'Null until an instance was chosen' }),
    value: Type.Unknown({ description: 'What the handler returned (JSON); null unless succeeded' }),
    error: Type.Union([InvocationError, Type.Null()]),
    stdout: Type.String(),
    stderr: Type.String(),
    stdout_truncated: Type.Boolean(),
    stderr_truncated: Type.Boolean(),
    duration_ms: Type.Union([Type.Integer(), Type.Null()], { description: 'The handler run inside the guest' }),
    total_ms: Type.Union([Type.Integer(), Type.Null()], {
      description: 'From accepted to finished: queue, instance start, load, run',
    }),
    vm_id: Type.Union([Uuid, Type.Null()], { description: 'The instance it ran in (deleted afterwards)' }),
    operation_id: Type.Union([Uuid, Type.Null()]),
    created_at: Timestamp,
    started_at: Type.Union([Timestamp, Type.Null()]),
    finished_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type Invocation = Static<typeof Invocation>;

export const InvokeRequest = Type.Object(
  { event: Type.Optional(Type.Unknown({ description: 'Any JSON value, passed to the handler (default {})' })) },
  { additionalProperties: false },
);
export type InvokeRequest = Static<typeof InvokeRequest>;

export const InvokeQuery = Type.Object(
  {
    async: Type.Optional(
      Type.Boolean({ description: 'true: answer 202 with the queued invocation at once; follow it by id' }),
    ),
  },
  { additionalProperties: false },
);

/**
 * The event a handler receives from the HTTP trigger `/fn/{name}/*`. The handler's return value is the response:
 * `{status?, headers?, body?}` (body a string is sent as is, anything else as JSON; status defaults to 200), or
 * any other value, sent as a 200 JSON body.
 */
export const HttpTriggerEvent = Type.Object(
  {
    method: Type.String(),
    path: Type.String({ description: 'The path after /fn/{name}, starting with /' }),
    query: Type.Record(Type.String(), Type.String()),
    headers: Type.Record(Type.String(), Type.String()),
    body: Type.String({ description: 'The request body as UTF-8 text (empty when none)' }),
  },
  { additionalProperties: false },
);
export type HttpTriggerEvent = Static<typeof HttpTriggerEvent>;

export const ListFunctionsQuery = Type.Object(
  { ...CursorQuery, project_id: Type.Optional(Uuid) },
  { additionalProperties: false },
);

export const ListInvocationsQuery = Type.Object(
  { ...CursorQuery, state: Type.Optional(InvocationState) },
  { additionalProperties: false },
);

const tag = 'functions';

export const functionRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/functions',
    operationId: 'listFunctions',
    permission: 'function:read',
    summary: 'Functions, by name',
    tag,
    auth: 'user',
    status: 200,
    query: ListFunctionsQuery,
    response: Page(FunctionResource),
  }),
  create: route({
    method: 'POST',
    path: '/v1/functions',
    operationId: 'createFunction',
    permission: 'function:write',
    summary: 'Create a function (version 1); its warm snapshot is built in the background',
    tag,
    auth: 'user',
    status: 201,
    body: CreateFunctionRequest,
    response: FunctionResource,
  }),
  get: route({
    method: 'GET',
    path: '/v1/functions/:id',
    operationId: 'getFunction',
    permission: 'function:read',
    summary: 'One function with its current code (secret values are never returned)',
    tag,
    auth: 'user',
    status: 200,
    params: IdParams,
    response: FunctionResource,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/functions/:id',
    operationId: 'updateFunction',
    permission: 'function:write',
    summary: 'Change code or configuration: a change to what runs makes a new version (and a new warm snapshot)',
    tag,
    auth: 'user',
    status: 200,
    params: IdParams,
    body: UpdateFunctionRequest,
    response: FunctionResource,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/functions/:id',
    operationId: 'deleteFunction',
    permission: 'function:write',
    summary: 'Delete a function, its versions, invocations, warm snapshots and instances',
    tag,
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
  versions: route({
    method: 'GET',
    path: '/v1/functions/:id/versions',
    operationId: 'listFunctionVersions',
    permission: 'function:read',
    summary: "A function's versions, newest first",
    tag,
    auth: 'user',
    status: 200,
    params: IdParams,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(FunctionVersion),
  }),
  invoke: route({
    method: 'POST',
    path: '/v1/functions/:id/invoke',
    operationId: 'invokeFunction',
    permission: 'function:invoke',
    summary:
      'Run the current version with an event and answer the finished invocation (200), or with ?async=true the queued one (202); 429 function_queue_full when the queue is full',
    tag,
    auth: 'user',
    status: 200,
    params: IdParams,
    query: InvokeQuery,
    body: InvokeRequest,
    response: Invocation,
  }),
  invocations: route({
    method: 'GET',
    path: '/v1/functions/:id/invocations',
    operationId: 'listFunctionInvocations',
    permission: 'function:read',
    summary: "A function's invocations, newest first",
    tag,
    auth: 'user',
    status: 200,
    params: IdParams,
    query: ListInvocationsQuery,
    response: Page(Invocation),
  }),
  invocation: route({
    method: 'GET',
    path: '/v1/invocations/:id',
    operationId: 'getInvocation',
    permission: 'function:read',
    summary: 'One invocation: state, start path, value or error, stdout/stderr, duration',
    tag,
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Invocation,
  }),
};
