import type { FunctionResource, FunctionVersion, Invocation } from '@nqvm/api';
import { BadRequest } from '../../domain/errors.ts';
import type { FunctionRow, InvocationRow, VersionRow } from './functions.repository.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export function toFunction(f: FunctionRow, v: VersionRow): FunctionResource {
  return {
    id: f.id,
    project_id: f.projectId,
    name: f.name,
    description: f.description,
    runtime: f.runtime,
    handler: v.handler,
    files: v.files,
    vcpu: v.vcpu,
    mem_mib: v.memMib,
    timeout_ms: v.timeoutMs,
    env: v.env,
    secret_names: Object.keys(v.secretsEnc).sort(),
    network: v.network,
    concurrency: f.concurrency,
    queue_limit: f.queueLimit,
    http_enabled: f.httpEnabled,
    http_token_set: f.httpTokenHash !== null,
    version: f.version,
    created_at: f.createdAt.toISOString(),
    updated_at: f.updatedAt.toISOString(),
  };
}

export function toVersion(v: VersionRow): FunctionVersion {
  return {
    id: v.id,
    function_id: v.functionId,
    version: v.version,
    runtime: v.runtime,
    handler: v.handler,
    files: v.files,
    vcpu: v.vcpu,
    mem_mib: v.memMib,
    timeout_ms: v.timeoutMs,
    network: v.network,
    env: v.env,
    secret_names: Object.keys(v.secretsEnc).sort(),
    snapshot_state: v.snapshotState,
    snapshot_id: v.snapshotId,
    created_at: v.createdAt.toISOString(),
  };
}

export function toInvocation(r: InvocationRow): Invocation {
  return {
    id: r.id,
    function_id: r.functionId,
    version: r.version,
    state: r.state,
    trigger: r.trigger,
    start: r.start,
    value: r.value ?? null,
    error: r.error,
    stdout: r.stdout,
    stderr: r.stderr,
    stdout_truncated: r.stdoutTruncated,
    stderr_truncated: r.stderrTruncated,
    duration_ms: r.durationMs,
    total_ms: r.totalMs,
    vm_id: r.vmId,
    operation_id: null,
    created_at: r.createdAt.toISOString(),
    started_at: iso(r.startedAt),
    finished_at: iso(r.finishedAt),
  };
}

/** Page cursors: an opaque base64url of the last row's key. */
export function decodeCursor(cursor: string | undefined, pattern: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!pattern.test(raw)) throw new BadRequest('invalid_cursor', 'cursor is not valid', 'query.cursor');
  return raw;
}
export const encodeCursor = (key: string) => Buffer.from(key).toString('base64url');

export function page<R, T>(rows: R[], limit: number, map: (r: R) => T, key: (r: R) => string) {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items: items.map(map), next_cursor: rows.length > limit && last ? encodeCursor(key(last)) : null };
}
