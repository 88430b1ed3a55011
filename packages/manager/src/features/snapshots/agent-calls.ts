import { type AgentTarget, callAgent } from '../vms/agent-client.ts';

/** A snapshot-sized call to a host agent (saving RAM takes a while); the agent's 4xx stays the caller's 4xx. */
export function agentCall<T>(t: AgentTarget, method: string, path: string, body?: unknown): Promise<T> {
  return callAgent<T>(t, method, path, body, { timeoutMs: 300_000, passClientErrors: true });
}
