import { type AgentTarget, callAgent } from '../vms/agent-client.ts';

/** Live device calls on a host agent; an interface so unit tests can pass a small fake. */
export interface DevicesAgent {
  call<T>(t: AgentTarget, method: 'GET' | 'PATCH', path: string, body?: unknown): Promise<T>;
}

/** The agent's own 4xx answers (no balloon device, bad value) keep their status and code. */
export class HttpDevicesAgent implements DevicesAgent {
  constructor(private readonly timeoutMs = 30_000) {}

  call<T>(t: AgentTarget, method: 'GET' | 'PATCH', path: string, body?: unknown): Promise<T> {
    return callAgent<T>(t, method, `/agent/v1${path}`, body, { timeoutMs: this.timeoutMs, passClientErrors: true });
  }
}
