import { DomainError, UpstreamError } from '../../domain/errors.ts';
import type { AgentTarget } from '../vms/agent-client.ts';

/** Live device calls on a host agent; an interface so unit tests can pass a small fake. */
export interface DevicesAgent {
  call<T>(t: AgentTarget, method: 'GET' | 'PATCH', path: string, body?: unknown): Promise<T>;
}

/** The agent's own 4xx answers (no balloon device, bad value) keep their status and code. */
export class HttpDevicesAgent implements DevicesAgent {
  constructor(private readonly timeoutMs = 30_000) {}

  async call<T>(t: AgentTarget, method: 'GET' | 'PATCH', path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${t.addr}/agent/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${t.secret}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new UpstreamError(`host agent unreachable: ${err instanceof Error ? err.message : String(err)}`, {
        host_id: t.hostId,
      });
    }
    const text = await res.text();
    const parsed = (() => {
      try {
        return JSON.parse(text) as Record<string, unknown>;
      } catch {
        return undefined;
      }
    })();
    if (res.ok) return parsed as T;
    const code = typeof parsed?.code === 'string' ? parsed.code : 'agent_error';
    const detail = typeof parsed?.detail === 'string' ? parsed.detail : text;
    if (res.status >= 400 && res.status < 500) throw new DomainError(res.status, code, `host agent: ${detail}`);
    throw new UpstreamError(`host agent: ${detail}`, { host_id: t.hostId, agent_status: res.status });
  }
}
