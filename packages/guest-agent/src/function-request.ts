/**
 * The function runner's requests, checked by hand (the guest agent bundles no schema library). The bounds and
 * patterns are those of `@nqvm/api` function-runner.schema.ts; a unit test holds them equal.
 */

export type Runtime = 'node20' | 'python3';

export interface LoadRequest {
  runtime: Runtime;
  /** The file part of `file.export`, without extension (`/`-separated). */
  file: string;
  /** The export part of `file.export`. */
  name: string;
  files: Record<string, string>;
  env: Record<string, string>;
}

export interface InvokeRequest {
  /** The event, serialised. */
  eventJson: string;
  timeoutMs: number;
  outputLimitBytes: number;
}

export const LIMITS = {
  maxFiles: 64,
  maxCodeBytes: 1024 * 1024,
  maxPathLength: 255,
  maxEnvVars: 64,
  maxEnvValueBytes: 16 * 1024,
  maxEventBytes: 1024 * 1024,
  minTimeoutMs: 100,
  maxTimeoutMs: 15 * 60 * 1000,
  minOutputLimitBytes: 1024,
  maxOutputLimitBytes: 4 * 1024 * 1024,
} as const;

export const PATH_PATTERN = /^(?!\.{1,2}(\/|$))(?!.*\/\.{1,2}(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
export const HANDLER_PATTERN = /^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*\.[A-Za-z_$][A-Za-z0-9_$]*$/;
export const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** Names the runner sets itself: a function's environment cannot replace them. */
const RESERVED_ENV = new Set([
  'PATH',
  'HOME',
  'NODE_OPTIONS',
  'PYTHONPATH',
  'PYTHONHOME',
  'LD_PRELOAD',
  'LD_LIBRARY_PATH',
]);

/** A refusal: the HTTP status, a catalogued code, the field and why. */
export class RequestRefused extends Error {
  constructor(
    readonly status: 400 | 413,
    readonly code: 'validation_failed' | 'runner_too_large',
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

const bad = (field: string, message: string) => new RequestRefused(400, 'validation_failed', field, message);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A path the function may have: relative, no `.`/`..` segment, no empty segment, safe characters only. */
export function safeRelativePath(p: string): boolean {
  return p.length > 0 && p.length <= LIMITS.maxPathLength && PATH_PATTERN.test(p);
}

function only(body: Record<string, unknown>, allowed: string[]): void {
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw bad(`body.${k}`, `unknown field ${k}`);
}

export function parseLoad(raw: unknown): LoadRequest {
  if (!isObject(raw)) throw bad('body', 'body must be a JSON object');
  only(raw, ['runtime', 'handler', 'files', 'env']);
  const { runtime, handler, files, env } = raw;
  if (runtime !== 'node20' && runtime !== 'python3') throw bad('body.runtime', 'runtime must be node20 or python3');
  if (typeof handler !== 'string' || handler.length > 255 || !HANDLER_PATTERN.test(handler))
    throw bad('body.handler', 'handler must be file.export, e.g. index.handler');
  const dot = handler.lastIndexOf('.');
  if (!isObject(files)) throw bad('body.files', 'files must map paths to contents');
  const paths = Object.keys(files);
  if (paths.length === 0) throw bad('body.files', 'files must hold at least one file');
  if (paths.length > LIMITS.maxFiles)
    throw new RequestRefused(413, 'runner_too_large', 'body.files', `at most ${LIMITS.maxFiles} files`);
  let total = 0;
  for (const p of paths) {
    if (!safeRelativePath(p)) throw bad(`body.files.${p}`, 'a path must be relative, without . or .. segments');
    const content = files[p];
    if (typeof content !== 'string') throw bad(`body.files.${p}`, 'a file content must be a string');
    total += Buffer.byteLength(content, 'utf8');
  }
  // A path that is also a directory of another (`a` and `a/b`) cannot be written.
  const set = new Set(paths);
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++)
      if (set.has(parts.slice(0, i).join('/')))
        throw bad(`body.files.${p}`, `${parts.slice(0, i).join('/')} is a file`);
  }
  if (total > LIMITS.maxCodeBytes)
    throw new RequestRefused(413, 'runner_too_large', 'body.files', `the files hold ${total} bytes, at most 1 MiB`);
  if (!isObject(env)) throw bad('body.env', 'env must map names to values');
  const names = Object.keys(env);
  if (names.length > LIMITS.maxEnvVars) throw bad('body.env', `at most ${LIMITS.maxEnvVars} variables`);
  for (const n of names) {
    if (!ENV_NAME_PATTERN.test(n)) throw bad(`body.env.${n}`, 'a variable name is letters, digits and _');
    if (RESERVED_ENV.has(n)) throw bad(`body.env.${n}`, `${n} is set by the runner`);
    const v = env[n];
    if (typeof v !== 'string' || Buffer.byteLength(v, 'utf8') > LIMITS.maxEnvValueBytes || v.includes('\0'))
      throw bad(`body.env.${n}`, 'a value is a string of at most 16 KiB without NUL');
  }
  return {
    runtime,
    file: handler.slice(0, dot),
    name: handler.slice(dot + 1),
    files: files as Record<string, string>,
    env: env as Record<string, string>,
  };
}

const intIn = (v: unknown, min: number, max: number) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

export function parseInvoke(raw: unknown): InvokeRequest {
  if (!isObject(raw)) throw bad('body', 'body must be a JSON object');
  only(raw, ['event', 'timeout_ms', 'output_limit_bytes']);
  if (!('event' in raw)) throw bad('body.event', 'event is required (any JSON value)');
  if (!intIn(raw.timeout_ms, LIMITS.minTimeoutMs, LIMITS.maxTimeoutMs))
    throw bad('body.timeout_ms', `timeout_ms is an integer from ${LIMITS.minTimeoutMs} to ${LIMITS.maxTimeoutMs}`);
  if (!intIn(raw.output_limit_bytes, LIMITS.minOutputLimitBytes, LIMITS.maxOutputLimitBytes))
    throw bad(
      'body.output_limit_bytes',
      `output_limit_bytes is an integer from ${LIMITS.minOutputLimitBytes} to ${LIMITS.maxOutputLimitBytes}`,
    );
  const eventJson = JSON.stringify(raw.event);
  if (Buffer.byteLength(eventJson, 'utf8') > LIMITS.maxEventBytes)
    throw new RequestRefused(413, 'runner_too_large', 'body.event', 'the event is larger than 1 MiB as JSON');
  return { eventJson, timeoutMs: raw.timeout_ms as number, outputLimitBytes: raw.output_limit_bytes as number };
}
