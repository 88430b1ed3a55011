import type {} from '@fastify/cookie';
import {
  bodyRequired,
  type Permission,
  type RouteAuth,
  type RouteBody,
  type RouteDef,
  type RouteParams,
  type RouteQuery,
  type RouteResponse,
  type UserPermission,
} from '@nqvm/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { ListCaches } from '../db/list-cache.ts';
import { Forbidden, Unauthorized } from '../domain/errors.ts';
import { type Authenticator, allows, type Principal } from './principal.ts';
import { checkAccess } from './scope.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyInstance {
    /** The list page caches (db/list-cache.ts), when the app keeps them. */
    listCaches?: ListCaches;
  }
}

export const SESSION_COOKIE = 'nqvm_session';

export interface Ctx<D extends RouteDef> {
  params: RouteParams<D>;
  query: RouteQuery<D>;
  body: RouteBody<D>;
  principal: Principal;
  req: FastifyRequest;
  reply: FastifyReply;
}

export function bearerOf(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h?.startsWith('Bearer ')) return h.slice(7).trim() || undefined;
  return undefined;
}

function credentialOf(req: FastifyRequest): string | undefined {
  return bearerOf(req) ?? req.cookies?.[SESSION_COOKIE];
}

/**
 * Path parameters are checked against the route's schema before anything looks a credential up, so a
 * malformed id is a 400 and never reaches the database (Fastify itself validates only after onRequest).
 */
export function checkParams(req: FastifyRequest): void {
  const validate = req.getValidationFunction('params');
  if (!validate || validate(req.params)) return;
  throw Object.assign(new Error('invalid path parameters'), {
    statusCode: 400,
    validation: validate.errors ?? [],
    validationContext: 'params',
  });
}

/** Who may call a route: its credential kind and the permission it declares in the route table. */
export interface RouteGuard {
  auth: RouteAuth;
  permission?: Permission;
  operationId: string;
  /** The route's path: a path naming a resource's `:id` takes the project check too (http/scope.ts). */
  path?: string;
}

/**
 * One place decides who is calling, per the route's declared auth, and whether they hold the route's declared
 * permission (403 otherwise); every route goes through it. A route without a declared permission is refused when
 * it is mounted, so none can be served unchecked.
 */
export function authHook(route: RouteGuard, authn: Authenticator): onRequestHookHandler {
  const { auth, permission } = route;
  if (!permission) throw new Error(`route ${route.operationId} declares no permission`);
  return async (req) => {
    req.principal = { kind: 'anonymous' };
    checkParams(req);
    if (auth === 'public') return;
    if (auth === 'user') {
      const token = credentialOf(req);
      const p = token ? await authn.user(token) : null;
      if (!p) throw new Unauthorized(token ? 'invalid or expired credentials' : 'authentication required');
      req.principal = p;
    } else {
      const id = (req.params as Record<string, string> | undefined)?.id;
      const secret = bearerOf(req);
      if (!id || !secret) throw new Unauthorized();
      const p = auth === 'host' ? await authn.host(id, secret) : await authn.guest(id, secret);
      if (!p) throw new Unauthorized('invalid credentials');
      req.principal = p;
    }
    if (!allows(req.principal, permission)) throw new Forbidden(`this needs the permission ${permission}`);
    if (auth === 'user') await checkResource(req, route, authn, permission as UserPermission);
  };
}

/** The resource-level half of the check: the caller's permission in the project of the resource `:id` names. */
async function checkResource(req: FastifyRequest, route: RouteGuard, authn: Authenticator, permission: UserPermission) {
  const id = (req.params as Record<string, string> | undefined)?.id;
  const guard = id && route.path ? authn.resource?.(route.path) : undefined;
  if (!guard || !id) return;
  const owned = await guard.owner(id);
  if (owned) checkAccess(req.principal, guard.kind, id, owned, permission, guard.publicUse);
}

/** A body whose fields are all optional may be left out: an absent one is validated and handled as `{}`. */
function absentBodyHook(def: RouteDef) {
  if (!def.body || def.rawBody || bodyRequired(def.body)) return {};
  return {
    preValidation: async (req: FastifyRequest) => {
      if (req.body === undefined || req.body === null) req.body = {};
    },
  };
}

/** The Fastify schema of a route from its table entry. */
export function schemaOf(def: RouteDef) {
  return {
    ...(def.params ? { params: def.params } : {}),
    ...(def.query ? { querystring: def.query } : {}),
    ...(def.body ? { body: def.body } : {}),
    tags: [def.tag],
    summary: def.summary,
  };
}

export function mount<D extends RouteDef>(
  app: FastifyInstance,
  authn: Authenticator,
  def: D,
  handler: (ctx: Ctx<D>) => Promise<RouteResponse<D>>,
): void {
  if (app.listCaches?.forRoute(def.operationId)) {
    mountJson(app, authn, def, async (ctx) => JSON.stringify(await handler(ctx)));
    return;
  }
  app.route({
    method: def.method,
    url: def.path,
    schema: schemaOf(def),
    onRequest: authHook(def, authn),
    ...absentBodyHook(def),
    handler: async (req, reply) => {
      const result = await handler({
        params: req.params as RouteParams<D>,
        query: req.query as RouteQuery<D>,
        body: req.body as RouteBody<D>,
        principal: req.principal,
        req,
        reply,
      });
      if (reply.sent) return reply;
      reply.code(def.status);
      if (def.status === 204) return reply.send();
      return result;
    },
  });
}

/** Who a cached page was read for: callers who may see different rows never share a page. */
function scopeOf(p: Principal): string {
  switch (p.kind) {
    case 'user':
      return `user:${p.userId}:${p.role}:${p.via === 'token' ? p.credentialId : 'session'}:${JSON.stringify(p.projects)}`;
    case 'host':
      return `host:${p.hostId}`;
    case 'guest':
      return `guest:${p.vmId}`;
    case 'anonymous':
      return 'anonymous';
  }
}

/**
 * Like mount, for a handler that returns the response body as JSON text already in the route's response shape
 * (list pages rendered by the database, see db/keyset.ts). GET pages of list routes are served from the list caches
 * between changes (db/list-cache.ts).
 */
export function mountJson<D extends RouteDef>(
  app: FastifyInstance,
  authn: Authenticator,
  def: D,
  handler: (ctx: Ctx<D>) => Promise<string>,
): void {
  app.route({
    method: def.method,
    url: def.path,
    schema: schemaOf(def),
    onRequest: authHook(def, authn),
    handler: async (req, reply) => {
      const produce = () =>
        handler({
          params: req.params as RouteParams<D>,
          query: req.query as RouteQuery<D>,
          body: req.body as RouteBody<D>,
          principal: req.principal,
          req,
          reply,
        });
      const cache = req.method === 'GET' ? app.listCaches?.forRoute(def.operationId) : undefined;
      let body: string;
      if (cache) {
        const key = `${scopeOf(req.principal)} ${req.url}`;
        const hit = cache.get(key);
        if (hit === undefined) {
          const generation = cache.generation;
          body = await produce();
          cache.put(key, generation, body);
        } else body = hit;
      } else body = await produce();
      return reply.code(def.status).type('application/json; charset=utf-8').send(body);
    },
  });
}
