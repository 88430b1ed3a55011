import type {} from '@fastify/cookie';
import type { RouteBody, RouteDef, RouteParams, RouteQuery, RouteResponse } from '@nqvm/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { Unauthorized } from '../domain/errors.ts';
import type { Authenticator, Principal } from './principal.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
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

/** One place decides who is calling, per the route's declared auth; every route goes through it. */
export function authHook(auth: RouteDef['auth'], authn: Authenticator): onRequestHookHandler {
  return async (req) => {
    req.principal = { kind: 'anonymous' };
    if (auth === 'public') return;
    if (auth === 'user') {
      const token = credentialOf(req);
      const p = token ? await authn.user(token) : null;
      if (!p) throw new Unauthorized(token ? 'invalid or expired credentials' : 'authentication required');
      req.principal = p;
      return;
    }
    const id = (req.params as Record<string, string> | undefined)?.id;
    const secret = bearerOf(req);
    if (!id || !secret) throw new Unauthorized();
    const p = auth === 'host' ? await authn.host(id, secret) : await authn.guest(id, secret);
    if (!p) throw new Unauthorized('invalid credentials');
    req.principal = p;
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
  app.route({
    method: def.method,
    url: def.path,
    schema: schemaOf(def),
    onRequest: authHook(def.auth, authn),
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

/**
 * Like mount, for a handler that returns the response body as JSON text already in the route's response shape
 * (list pages rendered by the database, see db/keyset.ts).
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
    onRequest: authHook(def.auth, authn),
    handler: async (req, reply) => {
      const body = await handler({
        params: req.params as RouteParams<D>,
        query: req.query as RouteQuery<D>,
        body: req.body as RouteBody<D>,
        principal: req.principal,
        req,
        reply,
      });
      return reply.code(def.status).type('application/json; charset=utf-8').send(body);
    },
  });
}
