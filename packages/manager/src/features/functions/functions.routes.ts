import { timingSafeEqual } from 'node:crypto';
import { api, type HttpTriggerEvent, type Invocation } from '@nqvm/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NotFound, Unauthorized } from '../../domain/errors.ts';
import { authHook, bearerOf, mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import { actorOf } from '../../http/principal.ts';
import { sendProblem } from '../../http/problem.ts';
import { createIn, visibleProjects } from '../../http/scope.ts';
import { hashToken } from '../../security/tokens.ts';
import type { FunctionsService } from './functions.service.ts';

export function functionsRoutes(app: FastifyInstance, authn: Authenticator, functions: FunctionsService) {
  const f = api.functions;
  mount(app, authn, f.list, async ({ query, principal }) => functions.list(query, visibleProjects(principal)));
  mount(app, authn, f.create, async ({ body, principal }) => {
    const projectId = await createIn(authn, principal, body.project_id, 'function:write');
    return functions.create({ ...body, project_id: projectId }, actorOf(principal));
  });
  mount(app, authn, f.get, async ({ params }) => functions.get(params.id));
  mount(app, authn, f.update, async ({ params, body, principal }) =>
    functions.update(params.id, body, actorOf(principal)),
  );
  mount(app, authn, f.delete, async ({ params, principal }) => functions.delete(params.id, actorOf(principal)));
  mount(app, authn, f.versions, async ({ params, query }) => functions.versions(params.id, query));
  mount(app, authn, f.invoke, async ({ params, query, body, reply }) => {
    const wait = query.async !== true;
    const inv = await functions.invoke(params.id, body.event ?? {}, { trigger: 'api', wait });
    if (!wait) return reply.code(202).send(inv);
    return inv;
  });
  mount(app, authn, f.invocations, async ({ params, query }) => functions.invocations(params.id, query));
  mount(app, authn, f.invocation, async ({ params }) => functions.invocation(params.id));
  void app.register(async (trigger) => httpTrigger(trigger, authn, functions));
}

const DROPPED_HEADERS = new Set(['authorization', 'cookie', 'host', 'connection', 'content-length']);

/**
 * `/fn/{name}/*`, any method: the request becomes the event (HttpTriggerEvent), the handler's value the response —
 * `{status?, headers?, body?}` (a string body is sent as is, anything else as JSON) or any other value as a 200 JSON
 * body. A failed invocation is a 502 problem, a timed out one a 504, both naming the invocation.
 */
function httpTrigger(app: FastifyInstance, authn: Authenticator, functions: FunctionsService) {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const onRequest = authHook({ auth: 'public', permission: 'public', operationId: 'functionHttpTrigger' }, authn);
  const handler = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const { name, '*': rest } = req.params as { name: string; '*'?: string };
    const fn = await functions.byName(name);
    if (!fn?.httpEnabled) throw new NotFound('function', name);
    if (fn.httpTokenHash) {
      const given = bearerOf(req);
      const a = Buffer.from(given ? hashToken(given) : '');
      const b = Buffer.from(fn.httpTokenHash);
      if (!(a.length === b.length && timingSafeEqual(a, b))) throw new Unauthorized('this function needs its token');
    }
    const url = new URL(req.url, 'http://trigger');
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' || Array.isArray(v))
        if (!DROPPED_HEADERS.has(k)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const event: HttpTriggerEvent = {
      method: req.method,
      path: `/${rest ?? ''}`,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '',
    };
    const inv = await functions.invoke(fn.id, event, { trigger: 'http', wait: true });
    return respond(req, reply, inv);
  };
  for (const url of ['/fn/:name', '/fn/:name/*'])
    app.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url, onRequest, handler });
}

function respond(req: FastifyRequest, reply: FastifyReply, inv: Invocation): FastifyReply {
  reply.header('x-nqvm-invocation-id', inv.id);
  if (inv.start) reply.header('x-nqvm-start', inv.start);
  const why = inv.error ? `${inv.error.type}: ${inv.error.message}` : `the invocation ended ${inv.state}`;
  if (inv.state === 'timed_out')
    return sendProblem(reply, req, 504, 'function_timed_out', why, { invocation_id: inv.id });
  if (inv.state !== 'succeeded') return sendProblem(reply, req, 502, 'function_failed', why, { invocation_id: inv.id });
  const v = inv.value;
  const shaped =
    v !== null && typeof v === 'object' && !Array.isArray(v) && ('status' in v || 'body' in v || 'headers' in v);
  if (!shaped)
    return reply
      .code(200)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify(v ?? null));
  const r = v as { status?: unknown; headers?: unknown; body?: unknown };
  const status =
    Number.isInteger(r.status) && (r.status as number) >= 200 && (r.status as number) <= 599 ? r.status : 200;
  reply.code(status as number);
  if (r.headers && typeof r.headers === 'object')
    for (const [k, hv] of Object.entries(r.headers as Record<string, unknown>))
      if (/^[A-Za-z0-9-]{1,64}$/.test(k) && typeof hv === 'string' && !/[\r\n]/.test(hv)) reply.header(k, hv);
  if (typeof r.body === 'string') {
    if (!reply.hasHeader('content-type')) reply.type('text/plain; charset=utf-8');
    return reply.send(r.body);
  }
  if (!reply.hasHeader('content-type')) reply.type('application/json; charset=utf-8');
  return reply.send(JSON.stringify(r.body ?? null));
}
