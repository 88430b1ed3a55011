import { type ProblemBody, statusOfCode, validationProblem, writeProblem } from '@nqvm/api';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../domain/errors.ts';

/** Sends a problem+json answer through the writer shared with the agent (`@nqvm/api`). */
export function sendProblem(
  reply: FastifyReply,
  req: FastifyRequest,
  status: number,
  code: string,
  detail: string,
  extra: Partial<ProblemBody> = {},
): FastifyReply {
  return writeProblem(reply, { status, code, detail, requestId: String(req.id), field: extra.field, extra });
}

/** Fastify's own errors by code: the catalogued code each becomes, and which input it is about. */
const FASTIFY_ERRORS: Record<string, { code: string; field?: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large', field: 'body' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', field: 'body' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'bad_request', field: 'body' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_json', field: 'body' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json', field: 'body' },
  FST_ERR_CTP_EMPTY_TYPE: { code: 'unsupported_media_type', field: 'body' },
  FST_ERR_CTP_INVALID_TYPE: { code: 'unsupported_media_type', field: 'body' },
  FST_ERR_BAD_URL: { code: 'invalid_url_encoding', field: 'path' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'uri_too_long', field: 'path' },
};

/** A Fastify error as a catalogued code; a code has one status, so it is sent with that code's. */
function frameworkProblem(err: FastifyError): { status: number; code: string; field?: string } {
  const known = err.code ? FASTIFY_ERRORS[err.code] : undefined;
  const code = known?.code ?? (err.statusCode === 413 ? 'body_too_large' : 'bad_request');
  return { status: statusOfCode(code) ?? 400, code, ...(known?.field ? { field: known.field } : {}) };
}

/** `/v1/vms/:id/start` → a regex matching concrete paths of that route. */
function routePattern(url: string): RegExp {
  const escaped = url.replace(/[.+?^$()|[\]\\{}]/g, '\\$&');
  return new RegExp(`^${escaped.replace(/:[A-Za-z_]+/g, '[^/]+')}$`);
}

/** Every error leaves as problem+json: domain errors, validation, Fastify's own 4xx, and the rest as a logged 500. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof DomainError) {
      return sendProblem(reply, req, err.status, err.code, err.message, {
        ...(err.field ? { field: err.field } : {}),
        ...(err.extra ?? {}),
      });
    }
    if (err.validation) return writeProblem(reply, validationProblem(err.validationContext, err.validation, req.id));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const p = frameworkProblem(err);
      return sendProblem(reply, req, p.status, p.code, err.message, p.field ? { field: p.field } : {});
    }
    req.log.error({ err }, 'unhandled error');
    return sendProblem(reply, req, 500, 'internal', 'an internal error occurred; see the manager log');
  });

  // A path some route serves under another method is a 405 naming the methods it takes (the console's
  // catch-all GET aside).
  const routes: { method: string; path: RegExp }[] = [];
  app.addHook('onRoute', (r) => {
    // A plain request to a WebSocket route is told to upgrade, as problem+json (the plugin would send an empty 404).
    // The plugin's route options: `wsHandler` serves upgrades, `handler` everything else.
    const ws = r as unknown as { websocket?: boolean; wsHandler?: unknown };
    if (ws.websocket) {
      ws.wsHandler = r.handler;
      ws.websocket = false;
      r.handler = async (req, reply) => {
        reply.header('upgrade', 'websocket');
        return sendProblem(reply, req, 426, 'upgrade_required', `${req.url.split('?')[0]} is a WebSocket endpoint`);
      };
    }
    if (r.url.includes('*')) return;
    const path = routePattern(r.url);
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, path });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '/';
    const allow = [...new Set(routes.filter((r) => r.path.test(path)).map((r) => r.method))];
    if (allow.length && !allow.includes(req.method)) {
      reply.header('allow', allow.join(', '));
      return sendProblem(reply, req, 405, 'method_not_allowed', `${req.method} is not allowed on ${path}`, {
        allowed: allow,
      });
    }
    return sendProblem(reply, req, 404, 'route_not_found', `no route ${req.method} ${path}`);
  });
}

/** For Fastify's `frameworkErrors`: malformed URL encoding and over-long path parameters, before any route runs. */
export function frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const p = frameworkProblem(err);
  sendProblem(reply, req, p.status, p.code, err.message, p.field ? { field: p.field } : {});
}
