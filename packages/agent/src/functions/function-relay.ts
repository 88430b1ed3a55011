import { ApiError, agentApi, FUNCTION_BODY_LIMITS, guestApi, type NqvmClient, statusOfCode } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import type { GuestEndpoints } from '../guest/server.ts';
import { mountRoute } from '../mount.ts';
import { AgentError, VmNotFound } from '../vms/errors.ts';
import type { VmService } from '../vms/vms.service.ts';

export interface FunctionRelayDeps {
  vms: Pick<VmService, 'specOf'>;
  guest: Pick<GuestEndpoints, 'clientOf'>;
}

/** How much longer than the handler's own timeout the relay waits for the guest's answer (kill, cleanup, network). */
const INVOKE_MARGIN_MS = 20_000;

/**
 * The guest's answer, or its 4xx problem passed on with the same status, code and members (`field`, `error`);
 * a guest that does not answer, or answers anything else, is a 502 `guest_agent_unavailable`.
 */
async function relay<T>(d: FunctionRelayDeps, vmId: string, call: (guest: NqvmClient) => Promise<T>): Promise<T> {
  if (!d.vms.specOf(vmId)) throw new VmNotFound(vmId);
  const guest = d.guest.clientOf(vmId);
  if (!guest) throw new AgentError(409, 'guest_not_ready', `VM ${vmId} has no guest address or token yet`);
  try {
    return await call(guest);
  } catch (err) {
    // Only the catalogued codes of the runner (with their own status) pass; a guest is not trusted to name others.
    if (err instanceof ApiError && err.status < 500 && statusOfCode(err.problem.code) === err.status) {
      const { type: _t, title: _ti, status: _s, code, detail, request_id: _r, ...extra } = err.problem;
      throw new AgentError(err.status, code, String(detail ?? code), extra);
    }
    const why = err instanceof ApiError ? `answered ${err.status}` : err instanceof Error ? err.message : String(err);
    throw new AgentError(502, 'guest_agent_unavailable', `the guest agent of VM ${vmId} did not answer: ${why}`);
  }
}

/** `POST /agent/v1/vms/:id/function/{load,invoke}`: relayed to the VM's guest agent with its token. */
export function functionRoutes(api: FastifyInstance, d: FunctionRelayDeps): void {
  mountRoute(
    api,
    agentApi.functions.load,
    (req) => relay(d, req.params.id, (g) => g.call(guestApi.functions.load, { body: req.body })),
    { bodyLimit: FUNCTION_BODY_LIMITS.load },
  );
  mountRoute(
    api,
    agentApi.functions.invoke,
    (req) =>
      relay(d, req.params.id, (g) =>
        g.call(guestApi.functions.invoke, { body: req.body, timeoutMs: req.body.timeout_ms + INVOKE_MARGIN_MS }),
      ),
    { bodyLimit: FUNCTION_BODY_LIMITS.invoke },
  );
}
