import type { AgentVmSpec, AgentVmStatus } from '@nqvm/api';
import { UpstreamError } from '../../domain/errors.ts';

export interface AgentTarget {
  hostId: string;
  addr: string;
  secret: string;
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

  private async call<T>(t: AgentTarget, method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${t.addr}${path}`, {
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
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    if (!res.ok) {
      let detail = text;
      try {
        const p = JSON.parse(text) as { detail?: string; code?: string };
        detail = p.detail ?? p.code ?? text;
      } catch {}
      throw new UpstreamError(`host agent: ${detail}`, { host_id: t.hostId, agent_status: res.status });
    }
    return JSON.parse(text) as T;
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
