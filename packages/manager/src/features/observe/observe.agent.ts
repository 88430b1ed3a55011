import { agentApi, type VmMetricsSample } from '@nqvm/api';
import type WebSocket from 'ws';
import { AgentClient, type AgentTarget } from '../vms/agent-client.ts';

/** How the manager reaches a host agent for observing a VM; an interface so tests can pass their own. */
export interface ObserveAgent {
  sample(t: AgentTarget, vmId: string): Promise<VmMetricsSample>;
  /** Opens the agent's console or live metrics WebSocket for the VM. */
  dial(t: AgentTarget, vmId: string, stream: 'console' | 'metrics'): WebSocket;
}

const STREAMS = { console: agentApi.observe.consoleWs, metrics: agentApi.observe.metricsWs } as const;

export class HttpObserveAgent implements ObserveAgent {
  constructor(private readonly agent: AgentClient = new AgentClient()) {}

  sample(t: AgentTarget, vmId: string): Promise<VmMetricsSample> {
    return this.agent.call(t, agentApi.observe.metrics, { params: { id: vmId } });
  }

  dial(t: AgentTarget, vmId: string, stream: 'console' | 'metrics'): WebSocket {
    return this.agent.dial(t, STREAMS[stream], { id: vmId });
  }
}
