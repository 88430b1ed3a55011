import { ApiError, NqvmClient, type RouteDef, type RouteResponse } from '@nqvm/api';

/** The one client of the console: same origin, session cookie (HttpOnly, set by POST /v1/auth/login). */
export const client = new NqvmClient({ baseUrl: '', credentials: 'include' });

type CallArgs<D extends RouteDef> = Parameters<typeof client.call<D>>[1];

const unauthorizedListeners = new Set<() => void>();

/** Called when any request answers 401: the session ended, so the app goes to the login page. */
export function onUnauthorized(fn: () => void): () => void {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

export async function call<D extends RouteDef>(def: D, args?: CallArgs<D>): Promise<RouteResponse<D>> {
  try {
    return await client.call(def, args);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401 && def.path !== '/v1/auth/login')
      for (const fn of unauthorizedListeners) fn();
    throw err;
  }
}

/** True when the endpoint is not part of this manager yet (or the resource is gone). */
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
