import type { Problem } from './common.schema.ts';
import type { RouteBody, RouteDef, RouteParams, RouteQuery, RouteResponse } from './route.ts';

/** An error answer from the API, carrying its problem+json body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.code}: ${problem.detail ?? problem.title}`);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  baseUrl: string;
  token?: string;
  fetch?: typeof fetch;
  /** Send cookies (browser sessions). */
  credentials?: 'include' | 'same-origin' | 'omit';
  /** Sent with every call (e.g. the request id a server forwards). */
  headers?: Record<string, string>;
}

export type CallArgs<D> = (RouteParams<D> extends undefined ? { params?: undefined } : { params: RouteParams<D> }) &
  (RouteQuery<D> extends undefined ? { query?: undefined } : { query?: RouteQuery<D> }) &
  (RouteBody<D> extends undefined
    ? { body?: undefined }
    : // A body whose fields are all optional may be left out (the server reads it as `{}`).
      object extends RouteBody<D>
      ? { body?: RouteBody<D> }
      : { body: RouteBody<D> }) & {
    signal?: AbortSignal;
    /** Overrides the route's `timeoutMs` (`null`: none); without either, the call waits as long as the signal allows. */
    timeoutMs?: number | null;
  };
type Args<D> = CallArgs<D>;

export function buildPath(path: string, params: Record<string, unknown> | undefined): string {
  return path.replace(/:([a-zA-Z_]+)/g, (_, name: string) => {
    const v = params?.[name];
    if (v === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(v));
  });
}

export function buildQuery(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.set(k, String(v));
  const s = qs.toString();
  return s ? `?${s}` : '';
}

/** The typed client used by the web console, the CLI and agents: `client.call(api.hosts.get, {params})`. */
export class NqvmClient {
  private readonly fetchImpl: typeof fetch;
  constructor(readonly options: ClientOptions) {
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  withToken(token: string | undefined): NqvmClient {
    return new NqvmClient({ ...this.options, token });
  }

  url<D extends RouteDef>(def: D, params?: RouteParams<D>, query?: RouteQuery<D>): string {
    return (
      this.options.baseUrl.replace(/\/$/, '') +
      buildPath(def.path, params as Record<string, unknown> | undefined) +
      buildQuery(query as Record<string, unknown> | undefined)
    );
  }

  /** The `ws:` / `wss:` URL of a WebSocket route. */
  wsUrl<D extends RouteDef>(def: D, params?: RouteParams<D>, query?: RouteQuery<D>): string {
    return this.url(def, params, query).replace(/^http/, 'ws');
  }

  /** Headers a caller of this client sends (credentials and the fixed ones), e.g. for a WebSocket upgrade. */
  authHeaders(): Record<string, string> {
    return {
      ...this.options.headers,
      ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
    };
  }

  /** Sends the request; a non-2xx answer is an ApiError carrying its problem+json. */
  async send<D extends RouteDef>(def: D, args: Args<D> = {} as Args<D>): Promise<Response> {
    const headers: Record<string, string> = {
      accept: def.rawResponse ? '*/*' : 'application/json',
      ...this.authHeaders(),
    };
    let body: string | undefined;
    if (args.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(args.body);
    }
    const timeoutMs = args.timeoutMs === null ? undefined : (args.timeoutMs ?? def.timeoutMs);
    const timeout = timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs);
    const signal = timeout && args.signal ? AbortSignal.any([timeout, args.signal]) : (timeout ?? args.signal);
    const res = await this.fetchImpl(this.url(def, args.params as RouteParams<D>, args.query as RouteQuery<D>), {
      method: def.method,
      headers,
      body,
      signal,
      credentials: this.options.credentials,
    });
    if (!res.ok) throw new ApiError(res.status, await problemOf(res));
    return res;
  }

  async call<D extends RouteDef>(def: D, args: Args<D> = {} as Args<D>): Promise<RouteResponse<D>> {
    const res = await this.send(def, args);
    if (res.status === 204) return undefined as RouteResponse<D>;
    return (await res.json()) as RouteResponse<D>;
  }
}

async function problemOf(res: Response): Promise<Problem> {
  const text = await res.text();
  try {
    return JSON.parse(text) as Problem;
  } catch {
    return { type: 'about:blank', title: res.statusText, status: res.status, code: 'http_error', detail: text };
  }
}
