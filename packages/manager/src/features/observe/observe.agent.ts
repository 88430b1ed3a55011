import type { VmMetricsSample } from '@nqvm/api';
import WebSocket from 'ws';
import { UpstreamError } from '../../domain/errors.ts';
import type { AgentTarget } from '../vms/agent-client.ts';

/** How the manager reaches a host agent for observing a VM; an interface so tests can pass their own. */
export interface ObserveAgent {
  sample(t: AgentTarget, vmId: string): Promise<VmMetricsSample>;
  /** Opens the agent's WebSocket at `path` with the host secret. */
  dial(t: AgentTarget, path: string): WebSocket;
}

export class HttpObserveAgent implements ObserveAgent {
  constructor(private readonly timeoutMs = 5000) {}

  async sample(t: AgentTarget, vmId: string): Promise<VmMetricsSample> {
    let res: Response;
    try {
      res = await fetch(`${t.addr}/agent/v1/vms/${vmId}/metrics`, {
        headers: { authorization: `Bearer ${t.secret}` },
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new UpstreamError(`host agent unreachable: ${err instanceof Error ? err.message : String(err)}`, {
        host_id: t.hostId,
      });
    }
    if (!res.ok) throw new UpstreamError(`host agent answered ${res.status}`, { host_id: t.hostId });
    return (await res.json()) as VmMetricsSample;
  }

  dial(t: AgentTarget, path: string): WebSocket {
    return new WebSocket(`${t.addr.replace(/^http/, 'ws')}${path}`, {
      headers: { authorization: `Bearer ${t.secret}` },
      handshakeTimeout: this.timeoutMs,
    });
  }
}
