import { type Static, Type } from 'typebox';
import { route } from './route.ts';

/**
 * The in-guest function runner's contract: the guest agent of a runtime VM loads a function's code (the handler
 * process starts and imports it, then waits for one event) and runs one invocation of it. The host agent relays
 * both calls for the manager (`/agent/v1/vms/:id/function/...`, same bodies and answers). Internal: never in the
 * public OpenAPI document.
 *
 * A VM snapshotted after `load` resumes with the code already imported (a warm start); after `invoke` the handler
 * process is gone (instances are discarded, no state is carried to another invocation).
 */

/** The runtimes a function runs on; each is a rootfs image labelled `nqvm.runtime=<runtime>`. */
export const FUNCTION_RUNTIMES = ['node20', 'python3'] as const;
export type FunctionRuntime = (typeof FUNCTION_RUNTIMES)[number];
/** The image label naming the runtime a rootfs image provides (`runtime-node20`, `runtime-python3`). */
export const RUNTIME_IMAGE_LABEL = 'nqvm.runtime';
export const runtimeImageName = (r: FunctionRuntime) => `runtime-${r}`;

/** Bounds of one function's code, environment, event and output. */
export const FUNCTION_LIMITS = {
  maxFiles: 64,
  /** The files' contents together, UTF-8 bytes. */
  maxCodeBytes: 1024 * 1024,
  maxPathLength: 255,
  maxEnvVars: 64,
  maxEnvValueBytes: 16 * 1024,
  /** The event, serialised as JSON. */
  maxEventBytes: 1024 * 1024,
  minTimeoutMs: 100,
  maxTimeoutMs: 15 * 60 * 1000,
  minOutputLimitBytes: 1024,
  maxOutputLimitBytes: 4 * 1024 * 1024,
} as const;

/**
 * The request bodies the load and invoke routes accept, as JSON (escaping a 1 MiB string can take up to 6 MiB);
 * the exact bounds are checked after parsing.
 */
export const FUNCTION_BODY_LIMITS = { load: 8 * 1024 * 1024, invoke: 8 * 1024 * 1024 } as const;

/**
 * A relative path of a file of the function: `/`-separated segments of letters, digits, `.`, `_` and `-`, none of
 * them `.` or `..`, no leading `/`. The guest checks it again before it writes anything.
 */
export const FUNCTION_PATH_PATTERN = '^(?!\\.{1,2}(/|$))(?!.*/\\.{1,2}(/|$))[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$';
/** `file.export`: a path without its extension, a dot, and the exported function's name. */
export const FUNCTION_HANDLER_PATTERN = '^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\\.[A-Za-z_$][A-Za-z0-9_$]*$';
export const FUNCTION_ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]{0,127}$';

export const FunctionRuntimeSchema = Type.Union([Type.Literal('node20'), Type.Literal('python3')], {
  description: "node20 (the guest tools' Node.js 20) or python3",
});

export const FunctionFiles = Type.Record(
  Type.String({ pattern: FUNCTION_PATH_PATTERN, maxLength: FUNCTION_LIMITS.maxPathLength }),
  Type.String({ maxLength: FUNCTION_LIMITS.maxCodeBytes }),
  {
    maxProperties: FUNCTION_LIMITS.maxFiles,
    minProperties: 1,
    // Refused, not dropped: Fastify's validator removes additional properties instead of refusing them.
    propertyNames: { pattern: FUNCTION_PATH_PATTERN, maxLength: FUNCTION_LIMITS.maxPathLength },
    additionalProperties: false,
    description: `Relative path → UTF-8 content; at most ${FUNCTION_LIMITS.maxFiles} files and 1 MiB together`,
  },
);
export type FunctionFiles = Static<typeof FunctionFiles>;

export const FunctionEnv = Type.Record(
  Type.String({ pattern: FUNCTION_ENV_NAME_PATTERN }),
  Type.String({ maxLength: FUNCTION_LIMITS.maxEnvValueBytes }),
  {
    maxProperties: FUNCTION_LIMITS.maxEnvVars,
    propertyNames: { pattern: FUNCTION_ENV_NAME_PATTERN },
    additionalProperties: false,
    description: "The handler process's environment (besides PATH, HOME)",
  },
);
export type FunctionEnv = Static<typeof FunctionEnv>;

export const FunctionLoadRequest = Type.Object(
  {
    runtime: FunctionRuntimeSchema,
    handler: Type.String({
      pattern: FUNCTION_HANDLER_PATTERN,
      maxLength: 255,
      description: '`file.export`, e.g. `index.handler` (index.js / .mjs / .cjs) or `main.handler` (main.py)',
    }),
    files: FunctionFiles,
    env: FunctionEnv,
  },
  { additionalProperties: false },
);
export type FunctionLoadRequest = Static<typeof FunctionLoadRequest>;

export const FunctionLoaded = Type.Object(
  {
    loaded: Type.Literal(true),
    load_ms: Type.Number({ minimum: 0, description: 'From the request to the handler imported and waiting' }),
  },
  { additionalProperties: false },
);
export type FunctionLoaded = Static<typeof FunctionLoaded>;

export const FunctionInvokeRequest = Type.Object(
  {
    event: Type.Unknown({ description: 'Any JSON value, at most 1 MiB serialised; the handler’s argument' }),
    timeout_ms: Type.Integer({ minimum: FUNCTION_LIMITS.minTimeoutMs, maximum: FUNCTION_LIMITS.maxTimeoutMs }),
    output_limit_bytes: Type.Integer({
      minimum: FUNCTION_LIMITS.minOutputLimitBytes,
      maximum: FUNCTION_LIMITS.maxOutputLimitBytes,
      description:
        'Caps stdout and stderr each (the rest is dropped, *_truncated) and the value (else output_too_large)',
    }),
  },
  { additionalProperties: false },
);
export type FunctionInvokeRequest = Static<typeof FunctionInvokeRequest>;

export const FUNCTION_FAILURE_REASONS = ['exception', 'out_of_memory', 'output_too_large', 'killed'] as const;
export type FunctionFailureReason = (typeof FUNCTION_FAILURE_REASONS)[number];

export const FunctionError = Type.Object(
  {
    type: Type.String({ description: 'e.g. TypeError, ValueError, MemoryError, TimeoutError' }),
    message: Type.String(),
    stack: Type.String({ description: 'The stack trace (JavaScript stack / Python traceback); may be empty' }),
    reason: Type.Optional(
      Type.Union(
        [
          Type.Literal('exception'),
          Type.Literal('out_of_memory'),
          Type.Literal('output_too_large'),
          Type.Literal('killed'),
        ],
        {
          description:
            'exception: the handler threw; out_of_memory: the runtime or the kernel ran out of memory; ' +
            'output_too_large: the value exceeds output_limit_bytes; killed: the process ended without an answer',
        },
      ),
    ),
  },
  { additionalProperties: false },
);
export type FunctionError = Static<typeof FunctionError>;

export const FUNCTION_STATUSES = ['succeeded', 'failed', 'timed_out'] as const;
export type FunctionStatus = (typeof FUNCTION_STATUSES)[number];

export const FunctionInvokeResult = Type.Object(
  {
    status: Type.Union([Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('timed_out')]),
    value: Type.Optional(Type.Unknown({ description: 'The JSON value the handler returned (succeeded only)' })),
    error: Type.Optional(FunctionError),
    stdout: Type.String(),
    stderr: Type.String(),
    stdout_truncated: Type.Boolean(),
    stderr_truncated: Type.Boolean(),
    duration_ms: Type.Number({ minimum: 0, description: 'From the event sent to the answer (or the kill)' }),
  },
  { additionalProperties: false },
);
export type FunctionInvokeResult = Static<typeof FunctionInvokeResult>;

const GUEST_SECOND = 1000;
const functionRoute = { tag: 'guest-agent', auth: 'guest' } as const;

/** Served by the guest agent (port 9000) with the VM token, from the host agent's address only. */
export const guestFunctionRoutes = {
  load: route({
    ...functionRoute,
    method: 'POST',
    path: '/function/load',
    operationId: 'guestAgentFunctionLoad',
    summary:
      'Write the code, start the handler process and wait until it has imported the handler (422 function_load_failed with `error` when it cannot)',
    status: 200,
    timeoutMs: 60 * GUEST_SECOND,
    body: FunctionLoadRequest,
    response: FunctionLoaded,
  }),
  invoke: route({
    ...functionRoute,
    method: 'POST',
    path: '/function/invoke',
    operationId: 'guestAgentFunctionInvoke',
    summary:
      'Send the event to the loaded handler and answer its value, output and duration; the process ends with it (409 function_not_loaded without a load)',
    status: 200,
    // The caller passes timeout_ms + a margin; this is the longest a call may wait.
    timeoutMs: FUNCTION_LIMITS.maxTimeoutMs + 30 * GUEST_SECOND,
    body: FunctionInvokeRequest,
    response: FunctionInvokeResult,
  }),
};

const AgentFunctionParams = Type.Object(
  { id: Type.String({ maxLength: 64, description: 'A VM id (UUID)' }) },
  { additionalProperties: false },
);

/** The host agent relays the runner's routes to the VM's guest agent (the manager calls these). */
export const agentFunctionRoutes = {
  load: route({
    ...guestFunctionRoutes.load,
    tag: 'agent-functions',
    auth: 'host',
    path: '/agent/v1/vms/:id/function/load',
    operationId: 'agentFunctionLoad',
    summary: "Relay POST /function/load to the VM's guest agent (its 4xx answers keep their status and code)",
    timeoutMs: 70 * GUEST_SECOND,
    params: AgentFunctionParams,
  }),
  invoke: route({
    ...guestFunctionRoutes.invoke,
    tag: 'agent-functions',
    auth: 'host',
    path: '/agent/v1/vms/:id/function/invoke',
    operationId: 'agentFunctionInvoke',
    summary: "Relay POST /function/invoke to the VM's guest agent; pass timeoutMs = timeout_ms + a margin",
    timeoutMs: FUNCTION_LIMITS.maxTimeoutMs + 40 * GUEST_SECOND,
    params: AgentFunctionParams,
  }),
};
