import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import {
  type AgentVmSpec,
  type AgentVmStatus,
  ApiError,
  agentApi,
  type CallArgs,
  type FunctionInvokeRequest,
  type FunctionInvokeResult,
  type FunctionLoaded,
  type FunctionLoadRequest,
  NqvmClient,
  type RouteDef,
  type RouteParams,
  type RouteResponse,
} from '@nqvm/api';
import WebSocket from 'ws';
import { DomainError, UpstreamError } from '../../domain/errors.ts';
import { currentRequestId } from '../../http/request-context.ts';

export interface AgentTarget {
  hostId: string;
  addr: string;
  secret: string;
}

/** The header that carries the manager's request id to the agent (its logs and problems use the same id). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** A host agent's own 4xx answer (a refused value, a missing device), passed through with its status and code. */
export class AgentRefused extends DomainError {
  constructor(status: number, code: string, detail: string, hostId: string) {
    super(status, code, `host agent: ${detail}`, undefined, { host_id: hostId });
  }
}

// The agent answering these means the manager is at fault (a stale secret, an agent of another version): a 502.
const NOT_THE_CALLERS_FAULT = new Set([401, 403]);
const UNKNOWN_ROUTE = 'route_not_found';

export interface AgentClientOptions {
  fetch?: typeof fetch;
  /** TLS for calling one host's agent (the manager's client certificate, its CA, the host's certificate name). */
  tls?: (hostId: string) => ConnectionOptions;
  /** Call agents that serve plain HTTP too (tests with stand-in agents); otherwise only `https:` agents. */
  allowPlainHttp?: boolean;
  /** The request id to forward; by default the one of the API request the call runs for. */
  requestId?: () => string | undefined;
}

/**
 * The only way the manager calls a host agent: every route of `agentApi`, typed by the table, with the route's
 * timeout, the host secret and the request id. The agent's 4xx answers keep their status and code
 * (`AgentRefused`); anything else (5xx, unreachable, timeout, not JSON) is a 502 `host_error`.
 */
export class AgentClient {
  private readonly agents = new Map<string, HttpsAgent>();
  constructor(private readonly opts: AgentClientOptions = {}) {}

  /** One keep-alive connection pool per host, each pinned to that host's certificate. */
  private tlsOf(t: AgentTarget): ConnectionOptions & { agent: HttpsAgent } {
    if (!this.opts.tls) throw new UpstreamError('host agent: this manager has no TLS identity', { host_id: t.hostId });
    const tls = this.opts.tls(t.hostId);
    let agent = this.agents.get(t.hostId);
    if (!agent) {
      agent = new HttpsAgent({ keepAlive: true, maxCachedSessions: 10, ...tls });
      this.agents.set(t.hostId, agent);
    }
    return { ...tls, agent };
  }

  private fetchFor(t: AgentTarget): typeof fetch | undefined {
    if (this.opts.fetch) return this.opts.fetch;
    const { addr } = t;
    if (addr.startsWith('https:')) return tlsFetch(this.tlsOf(t));
    if (this.opts.allowPlainHttp) return undefined;
    throw new UpstreamError(
      `host agent at ${addr} serves plain HTTP: the manager calls agents only over mutual TLS (restart the agent)`,
      { host_id: t.hostId },
    );
  }

  private client(t: AgentTarget): NqvmClient {
    const requestId = (this.opts.requestId ?? currentRequestId)();
    const fetchImpl = this.fetchFor(t);
    return new NqvmClient({
      baseUrl: t.addr,
      token: t.secret,
      ...(fetchImpl ? { fetch: fetchImpl } : {}),
      ...(requestId ? { headers: { [REQUEST_ID_HEADER]: requestId } } : {}),
    });
  }

  async call<D extends RouteDef>(t: AgentTarget, def: D, args: CallArgs<D>): Promise<RouteResponse<D>> {
    try {
      return await this.client(t).call(def, args);
    } catch (err) {
      throw failure(t, def, args.timeoutMs ?? undefined, err);
    }
  }

  /** A raw (text or bytes) answer as a stream; the route's timeout covers the headers, `signal` the rest. */
  async stream<D extends RouteDef>(t: AgentTarget, def: D, args: CallArgs<D>): Promise<ReadableStream<Uint8Array>> {
    let res: Response;
    // The timeout ends the wait for the answer's headers only: a followed log streams for as long as it is read.
    const headers = new AbortController();
    const limit = args.timeoutMs ?? def.timeoutMs;
    const timer = limit
      ? setTimeout(() => headers.abort(new DOMException('timed out', 'TimeoutError')), limit)
      : undefined;
    const signal = args.signal ? AbortSignal.any([headers.signal, args.signal]) : headers.signal;
    try {
      res = await this.client(t).send(def, { ...args, signal, timeoutMs: null });
    } catch (err) {
      throw failure(t, def, args.timeoutMs ?? undefined, err);
    } finally {
      clearTimeout(timer);
    }
    if (!res.body) throw new UpstreamError('host agent: answered without a body', { host_id: t.hostId });
    return res.body;
  }

  /** Opens one of the agent's WebSocket routes with the host secret. */
  dial<D extends RouteDef>(t: AgentTarget, def: D, params: RouteParams<D>): WebSocket {
    const c = this.client(t);
    const { agent: _pool, ...tls } = t.addr.startsWith('https:') ? this.tlsOf(t) : { agent: undefined };
    return new WebSocket(c.wsUrl(def, params), { headers: c.authHeaders(), handshakeTimeout: def.timeoutMs, ...tls });
  }

  /** Drops the connection pools (the manager is closing). */
  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}

/** `fetch` over node:https with TLS settings of our own (Node's fetch takes no client certificate or CA). */
function tlsFetch(tls: ConnectionOptions & { agent: HttpsAgent }): typeof fetch {
  return ((input: string | URL, init: RequestInit = {}) =>
    new Promise<Response>((resolve, reject) => {
      const signal = init.signal ?? undefined;
      if (signal?.aborted) return reject(signal.reason);
      const req = httpsRequest(
        new URL(String(input)),
        { method: init.method ?? 'GET', headers: init.headers as Record<string, string>, ...tls },
        (res) => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers))
            for (const one of v === undefined ? [] : Array.isArray(v) ? v : [v]) headers.append(k, one);
          const status = res.statusCode ?? 502;
          const empty = status === 204 || status === 304 || init.method === 'HEAD';
          if (empty) res.resume();
          const body = empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
          resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers }));
        },
      );
      const onAbort = () => req.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      req.on('error', (err) => reject(signal?.aborted ? signal.reason : err));
      req.end(typeof init.body === 'string' ? init.body : undefined);
    })) as typeof fetch;
}

function failure(t: AgentTarget, def: RouteDef, timeoutMs: number | undefined, err: unknown): DomainError {
  const host = { host_id: t.hostId };
  if (err instanceof ApiError) {
    const { status, problem } = err;
    const detail = problem.detail ?? problem.title ?? problem.code;
    if (status >= 400 && status < 500 && !NOT_THE_CALLERS_FAULT.has(status) && problem.code !== UNKNOWN_ROUTE)
      return new AgentRefused(status, problem.code, detail, t.hostId);
    return new UpstreamError(`host agent: ${detail}`, { ...host, agent_status: status, agent_code: problem.code });
  }
  if (err instanceof DOMException && err.name === 'TimeoutError')
    return new UpstreamError(
      `host agent did not answer ${def.operationId} within ${timeoutMs ?? def.timeoutMs} ms`,
      host,
    );
  if (err instanceof SyntaxError) return new UpstreamError('host agent: answered with something other than JSON', host);
  if (err instanceof DomainError) return err;
  return new UpstreamError(`host agent unreachable: ${err instanceof Error ? err.message : String(err)}`, host);
}

/** What the VM service asks of a host agent; an interface so unit tests can pass a small fake. */
export interface AgentApi {
  boot(t: AgentTarget, spec: AgentVmSpec): Promise<AgentVmStatus>;
  /** `force`: SIGKILL the VMM at once instead of an ACPI power-down. */
  stop(t: AgentTarget, vmId: string, timeoutS: number, force?: boolean): Promise<AgentVmStatus>;
  action(t: AgentTarget, vmId: string, action: 'pause' | 'resume' | 'ctrl-alt-del'): Promise<AgentVmStatus>;
  remove(t: AgentTarget, vmId: string): Promise<void>;
  list(t: AgentTarget): Promise<AgentVmStatus[]>;
}

const ACTIONS = {
  pause: agentApi.vms.pause,
  resume: agentApi.vms.resume,
  'ctrl-alt-del': agentApi.vms.ctrlAltDel,
} as const;

/** `AgentApi` over the agent client. */
export class HttpAgentApi implements AgentApi {
  constructor(private readonly agent: AgentClient = new AgentClient()) {}

  boot(t: AgentTarget, spec: AgentVmSpec) {
    return this.agent.call(t, agentApi.vms.boot, { params: { id: spec.vm_id }, body: spec });
  }
  stop(t: AgentTarget, vmId: string, timeoutS: number, force = false) {
    // The agent waits up to timeout_s for the guest before it kills the VMM.
    const timeoutMs = Math.max(agentApi.vms.stop.timeoutMs ?? 0, (timeoutS + 30) * 1000);
    const body = { timeout_s: timeoutS, ...(force ? { force } : {}) };
    return this.agent.call(t, agentApi.vms.stop, { params: { id: vmId }, body, timeoutMs });
  }
  action(t: AgentTarget, vmId: string, action: 'pause' | 'resume' | 'ctrl-alt-del') {
    return this.agent.call(t, ACTIONS[action], { params: { id: vmId } });
  }
  remove(t: AgentTarget, vmId: string) {
    return this.agent.call(t, agentApi.vms.remove, { params: { id: vmId } });
  }
  async list(t: AgentTarget) {
    return (await this.agent.call(t, agentApi.vms.list, {})).items;
  }
  /** Loads a function into a runtime VM's guest agent (the handler imported and waiting for its event). */
  functionLoad(t: AgentTarget, vmId: string, body: FunctionLoadRequest): Promise<FunctionLoaded> {
    return this.agent.call(t, agentApi.functions.load, { params: { id: vmId }, body });
  }
  /** Runs the loaded function once; waits for its timeout plus a margin for the kill and the relay. */
  functionInvoke(t: AgentTarget, vmId: string, body: FunctionInvokeRequest): Promise<FunctionInvokeResult> {
    const timeoutMs = body.timeout_ms + 30_000;
    return this.agent.call(t, agentApi.functions.invoke, { params: { id: vmId }, body, timeoutMs });
  }
}
