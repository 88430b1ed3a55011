import {
  ApiError,
  api,
  buildPath,
  buildQuery,
  type Image,
  type ImageKind,
  NqvmClient,
  type Problem,
  type RouteDef,
  type RouteResponse,
  type WsRouteDef,
} from '@nqvm/api';

/**
 * The console's only transport: every HTTP request goes through the typed client generated from the route
 * table, WebSockets through the API's `wsRoutes`. `no-raw-requests.test.ts` fails on any other request.
 */
export const client = new NqvmClient({ baseUrl: '', credentials: 'include' });

type CallArgs<D extends RouteDef> = Parameters<typeof client.call<D>>[1];

const unauthorizedListeners = new Set<() => void>();

/** Called when any request answers 401: the session ended, so the app goes to the login page. */
export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

/** Counts sign-ins: a 401 to a request sent before the latest one is about the session that ended, not this one. */
let sessions = 0;

function sessionEnded(status: number, def: RouteDef, sentIn: number): void {
  if (status === 401 && def !== api.auth.login && sentIn === sessions) for (const fn of unauthorizedListeners) fn();
}

export async function call<D extends RouteDef>(def: D, args?: CallArgs<D>): Promise<RouteResponse<D>> {
  const sentIn = sessions;
  try {
    const out = await client.call(def, args);
    if ((def as RouteDef) === api.auth.login) sessions++;
    return out;
  } catch (err) {
    if (err instanceof ApiError) sessionEnded(err.status, def, sentIn);
    throw err;
  }
}

/**
 * Every host, page after page: the hosts list is a keyset page (50 by default), and placement, capacity and the
 * host pickers must see them all, not the first page. Answers in the list's shape.
 */
export async function listAllHosts(): Promise<RouteResponse<typeof api.hosts.list>> {
  const items: RouteResponse<typeof api.hosts.list>['items'] = [];
  let cursor: string | undefined;
  do {
    const page = await call(api.hosts.list, { query: { limit: 500, ...(cursor ? { cursor } : {}) } });
    items.push(...page.items);
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
  return { items, next_cursor: null };
}

/** A `rawResponse` route (logs, downloads): the checked Response with its body unread. */
export async function callRaw<D extends RouteDef>(def: D, args?: CallArgs<D>): Promise<Response> {
  const sentIn = sessions;
  try {
    return await client.send(def, args);
  } catch (err) {
    if (err instanceof ApiError) sessionEnded(err.status, def, sentIn);
    throw err;
  }
}

/** A WebSocket of the public API (`wsRoutes`) on this origin; the session cookie authenticates it. */
export function openSocket(def: WsRouteDef, params?: Record<string, string>, query?: Record<string, unknown>) {
  const base = location.origin.replace(/^http/, 'ws');
  return new WebSocket(base + buildPath(def.path, params) + buildQuery(query));
}

/** `POST /v1/images/upload` as a raw byte stream through XHR, the one browser API with upload progress. */
export function uploadImage(
  file: File,
  meta: { name: string; kind: ImageKind; description?: string },
  onProgress: (sent: number, total: number) => void,
): { promise: Promise<Image>; abort: () => void } {
  const def = api.images.upload;
  const sentIn = sessions;
  const xhr = new XMLHttpRequest();
  const promise = new Promise<Image>((resolve, reject) => {
    xhr.open(def.method, client.url(def, undefined, meta));
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(JSON.parse(xhr.responseText) as Image);
      let problem: Problem;
      try {
        problem = JSON.parse(xhr.responseText) as Problem;
      } catch {
        problem = { type: 'about:blank', title: xhr.statusText, status: xhr.status, code: 'http_error' };
      }
      sessionEnded(xhr.status, def, sentIn);
      reject(new ApiError(xhr.status, problem));
    };
    xhr.onerror = () => reject(new Error('upload failed: network error'));
    xhr.onabort = () => reject(new Error('upload aborted'));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/** True when the resource is gone. */
export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

/** A route that the server does not know at all (as opposed to a missing resource). */
export function isMissingRoute(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404 && err.problem.code === 'route_not_found';
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.problem.detail ?? err.problem.title;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Field errors of a problem answer keyed by the field name (`/name` and `name` both map to `name`). */
export function fieldErrors(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(err instanceof ApiError)) return out;
  const norm = (f: string) =>
    f
      .replace(/^\/+/, '')
      .replace(/^body\./, '')
      .replace(/\//g, '.');
  for (const e of err.problem.errors ?? []) out[norm(e.field)] ??= e.message;
  if (err.problem.field) out[norm(err.problem.field)] ??= err.problem.detail ?? err.problem.title;
  return out;
}

export { ApiError };
