import type { Static, TSchema } from 'typebox';
import type { Permission } from './permissions.ts';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Who may call a route: a console user or API token, a host agent or the manager (per-host secret), a guest
 * (its VM token), or nobody special.
 */
export type RouteAuth = 'user' | 'host' | 'guest' | 'public';

/**
 * One HTTP operation of a contract (the public API, the manager ↔ agent API or the agent ↔ guest API). The
 * server registers its handler against this object, the OpenAPI document is generated from the public ones,
 * and the typed client calls through it — one source of truth.
 */
export interface RouteDef<
  P extends TSchema | undefined = TSchema | undefined,
  Q extends TSchema | undefined = TSchema | undefined,
  B extends TSchema | undefined = TSchema | undefined,
  R extends TSchema | undefined = TSchema | undefined,
> {
  method: HttpMethod;
  /** Fastify-style path, e.g. `/v1/images/:id`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  auth: RouteAuth;
  /** What the caller needs (permissions.ts), checked before the handler runs; every public API route has one. */
  permission?: Permission;
  status: 200 | 201 | 202 | 204;
  params?: P;
  query?: Q;
  body?: B;
  /** The body is a raw byte stream (uploads), not JSON. */
  rawBody?: boolean;
  response?: R;
  /** Response is a raw byte stream (downloads), not JSON. */
  rawResponse?: boolean;
  /** A WebSocket upgrade (GET): the client dials it, nothing is returned over HTTP. */
  websocket?: boolean;
  /** How long a caller waits for the answer unless it says otherwise (internal contracts). */
  timeoutMs?: number;
}

export function route<
  P extends TSchema | undefined = undefined,
  Q extends TSchema | undefined = undefined,
  B extends TSchema | undefined = undefined,
  R extends TSchema | undefined = undefined,
>(def: RouteDef<P, Q, B, R>): RouteDef<P, Q, B, R> {
  return def;
}

type StaticOr<T, F> = T extends TSchema ? Static<T> : F;

export type RouteParams<D> =
  D extends RouteDef<infer P, TSchema | undefined, TSchema | undefined, TSchema | undefined>
    ? StaticOr<P, undefined>
    : never;
export type RouteQuery<D> =
  D extends RouteDef<TSchema | undefined, infer Q, TSchema | undefined, TSchema | undefined>
    ? StaticOr<Q, undefined>
    : never;
export type RouteBody<D> =
  D extends RouteDef<TSchema | undefined, TSchema | undefined, infer B, TSchema | undefined>
    ? StaticOr<B, undefined>
    : never;
export type RouteResponse<D> =
  D extends RouteDef<TSchema | undefined, TSchema | undefined, TSchema | undefined, infer R>
    ? StaticOr<R, void>
    : never;

/**
 * Whether a JSON body must be sent: an object body whose fields are all optional (and that may be empty) may be
 * left out, and the server reads it as `{}` (the typed client makes `body` optional for it too).
 */
export function bodyRequired(schema: TSchema): boolean {
  const s = schema as { type?: unknown; required?: unknown; minProperties?: unknown };
  const required = Array.isArray(s.required) && s.required.length > 0;
  return s.type !== 'object' || required || (typeof s.minProperties === 'number' && s.minProperties > 0);
}
