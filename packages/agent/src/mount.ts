import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  codeForStatus,
  type RouteBody,
  type RouteDef,
  type RouteParams,
  type RouteQuery,
  type RouteResponse,
  statusOfCode,
  validationProblem,
  writeProblem,
} from '@nqvm/api';
import type {
  FastifyBaseLogger,
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchema,
  RawServerDefault,
} from 'fastify';
import { AgentError } from './vms/errors.ts';

export type RouteRequest<D extends RouteDef> = FastifyRequest<{
  Params: RouteParams<D>;
  Querystring: RouteQuery<D>;
  Body: RouteBody<D>;
}>;

/** The Fastify schema of a table route: params, query, body and (for JSON answers) the response. */
export function routeSchema(def: RouteDef): FastifySchema {
  return {
    ...(def.params ? { params: def.params } : {}),
    ...(def.query ? { querystring: def.query } : {}),
    ...(def.body ? { body: def.body } : {}),
    ...(def.response && !def.rawResponse ? { response: { [def.status]: def.response } } : {}),
  };
}

/**
 * Serves one route of the `@nqvm/api` table: its method, path and schemas come from the table, the answer is
 * serialised by its response schema and sent with its status. A handler that answers itself (streams) returns
 * the reply.
 */
export function mountRoute<D extends RouteDef>(
  app: FastifyInstance,
  def: D,
  handler: (req: RouteRequest<D>, reply: FastifyReply) => Promise<RouteResponse<D> | FastifyReply>,
  opts: { bodyLimit?: number } = {},
): void {
  app.route<{ Params: RouteParams<D>; Querystring: RouteQuery<D>; Body: RouteBody<D> }>({
    method: def.method,
    url: def.path,
    schema: routeSchema(def),
    ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}),
    handler: async (req, reply) => {
      const result = await handler(req, reply);
      if (reply.sent || result === reply) return result;
      reply.code(def.status);
      if (def.status === 204) return reply.send();
      return result;
    },
  });
}

/** Sends a problem+json answer with the writer shared with the manager. */
export function problem(
  reply: FastifyReply,
  req: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  const field = typeof extra.field === 'string' ? extra.field : undefined;
  return writeProblem(reply, { status, code, detail, requestId: String(req.id), field, extra });
}

/** Every error an agent server answers is problem+json with a catalogued code: typed, validation, framework, bug. */
export function installProblemHandling<L extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, L>,
): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof AgentError) return problem(reply, req, err.status, err.code, err.message, err.extra);
    if (err.validation) return writeProblem(reply, validationProblem(err.validationContext, err.validation, req.id));
    if (err.statusCode && err.statusCode < 500) {
      const code = codeForStatus(err.statusCode);
      return problem(reply, req, statusOfCode(code) ?? 400, code, err.message);
    }
    req.log.error({ err }, 'agent request failed');
    return problem(reply, req, 500, 'internal', err.message);
  });
  app.setNotFoundHandler((req, reply) => problem(reply, req, 404, 'route_not_found', `${req.method} ${req.url}`));
}
