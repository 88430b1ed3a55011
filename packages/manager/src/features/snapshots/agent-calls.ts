import { UpstreamError } from '../../domain/errors.ts';
import type { AgentTarget } from '../vms/agent-client.ts';

/** One authenticated call to a host agent; agent errors keep their status class (4xx stays 4xx). */
export async function agentCall<T>(t: AgentTarget, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${t.addr}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${t.secret}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(300_000),
    });
  } catch (err) {
    throw new UpstreamError(`host agent unreachable: ${err instanceof Error ? err.message : String(err)}`, {
      host_id: t.hostId,
    });
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  if (!res.ok) {
    let p: { detail?: string; code?: string } = {};
    try {
      p = JSON.parse(text) as typeof p;
    } catch {}
    throw new AgentCallFailed(res.status, p.code ?? 'host_error', `host agent: ${p.detail ?? text}`, t.hostId);
  }
  return JSON.parse(text) as T;
}

export class AgentCallFailed extends UpstreamError {
  constructor(
    readonly agentStatus: number,
    readonly agentCode: string,
    message: string,
    hostId: string,
  ) {
    super(message, { host_id: hostId, agent_status: agentStatus, agent_code: agentCode });
  }
}
