import type { AgentVmSpec, AgentVmStatus } from '@nqvm/api';
import { DomainError, UpstreamError } from '../../domain/errors.ts';

export interface AgentTarget {
  hostId: string;
  addr: string;
  secret: string;
}

export interface AgentCallOptions {
  timeoutMs: number;
  /** Keep the agent's own 4xx status and code (a refused value stays the caller's fault); otherwise 502. */
  passClientErrors?: boolean;
}

/** One authenticated call to a host agent's API (`path` from the root, e.g. `/agent/v1/vms`). */
export async function callAgent<T>(
  t: AgentTarget,
  method: string,
  path: string,
  body: unknown,
  opts: AgentCallOptions,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${t.addr}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${t.secret}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    throw new UpstreamError(`host agent unreachable: ${err instanceof Error ? err.message : String(err)}`, {
      host_id: t.hostId,
    });
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    if (res.ok) throw new UpstreamError('host agent: answered with something other than JSON', { host_id: t.hostId });
  }
  if (res.ok) return parsed as T;
  const p = (parsed ?? {}) as { detail?: unknown; code?: unknown };
  const code = typeof p.code === 'string' ? p.code : undefined;
  const detail = typeof p.detail === 'string' ? p.detail : undefined;
  if (opts.passClientErrors && res.status >= 400 && res.status < 500)
    throw new DomainError(res.status, code ?? 'agent_error', `host agent: ${detail ?? text}`);
  throw new UpstreamError(`host agent: ${detail ?? (opts.passClientErrors ? undefined : code) ?? text}`, {
    host_id: t.hostId,
    agent_status: res.status,
  });
}

/** What the manager asks of a host agent; an interface so unit tests can pass a small fake. */
export interface AgentApi {
  boot(t: AgentTarget, spec: AgentVmSpec): Promise<AgentVmStatus>;
  stop(t: AgentTarget, vmId: string, timeoutS: number): Promise<AgentVmStatus>;
  action(t: AgentTarget, vmId: string, action: 'pause' | 'resume' | 'ctrl-alt-del'): Promise<AgentVmStatus>;
  remove(t: AgentTarget, vmId: string): Promise<void>;
  list(t: AgentTarget): Promise<AgentVmStatus[]>;
}

export class HttpAgentApi implements AgentApi {
  constructor(private readonly timeoutMs = 120_000) {}

  private call<T>(t: AgentTarget, method: string, path: string, body?: unknown): Promise<T> {
    return callAgent<T>(t, method, path, body, { timeoutMs: this.timeoutMs });
  }

  boot(t: AgentTarget, spec: AgentVmSpec) {
    return this.call<AgentVmStatus>(t, 'POST', `/agent/v1/vms/${spec.vm_id}/boot`, spec);
  }
  stop(t: AgentTarget, vmId: string, timeoutS: number) {
    return this.call<AgentVmStatus>(t, 'POST', `/agent/v1/vms/${vmId}/stop`, { timeout_s: timeoutS });
  }
  action(t: AgentTarget, vmId: string, action: 'pause' | 'resume' | 'ctrl-alt-del') {
    return this.call<AgentVmStatus>(t, 'POST', `/agent/v1/vms/${vmId}/${action}`, {});
  }
  remove(t: AgentTarget, vmId: string) {
    return this.call<void>(t, 'DELETE', `/agent/v1/vms/${vmId}`);
  }
  async list(t: AgentTarget) {
    return (await this.call<{ items: AgentVmStatus[] }>(t, 'GET', '/agent/v1/vms')).items;
  }
}
