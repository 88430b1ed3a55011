import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import websocket from '@fastify/websocket';
import { AgentVmSpec } from '@nqvm/api';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Type } from 'typebox';
import { deviceRoutes } from './devices/devices.routes.ts';
import type { AgentMetrics } from './metrics/prometheus.ts';
import { AgentError } from './vms/errors.ts';
import { assertVmId } from './vms/layout.ts';
import type { VmService } from './vms/vms.service.ts';

export interface AgentAppDeps {
  vms: VmService;
  /** The current host secret (it changes when the agent re-registers); undefined until registered. */
  secret(): string | undefined;
  log: Logger;
  /** More feature routes (snapshots, MMDS, logs), mounted behind the host-secret check. */
  routes?: ((api: FastifyInstance) => void)[];
  /** Prometheus metrics: counted on every answer, served at `/metrics` behind the host secret. */
  metrics?: AgentMetrics;
}

/** The manager's request id (`x-request-id`) when it sent a sane one, so one id is logged on both sides. */
function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const h = req.headers['x-request-id'];
  return typeof h === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(h) ? h : randomUUID();
}

const IdParams = Type.Object({ id: Type.String({ maxLength: 64 }) });
const StopBody = Type.Object({ timeout_s: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600 })) });

function problem(reply: FastifyReply, req: FastifyRequest, status: number, code: string, detail: string, extra = {}) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `https://nqvm.dev/problems/${code}`, status, code, detail, request_id: String(req.id), ...extra });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Bearer check against the host secret, compared as hashes so length and content leak nothing. */
function authorized(req: FastifyRequest, secret: string | undefined): boolean {
  const h = req.headers.authorization;
  if (!secret || !h?.startsWith('Bearer ')) return false;
  return timingSafeEqual(digest(h.slice(7).trim()), digest(secret));
}

/** The agent's HTTP API (`/agent/v1`), called by the manager with the per-host secret. */
export function buildAgentApp(d: AgentAppDeps) {
  const app = Fastify({ loggerInstance: d.log, bodyLimit: 1024 * 1024, genReqId: requestId, requestIdHeader: false });
  if (d.metrics) app.addHook('onResponse', d.metrics.onResponse);
  // Registered once at the root: feature plugins that open WebSockets share its one upgrade handler.
  app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof AgentError) return problem(reply, req, err.status, err.code, err.message, err.extra);
    if (err.validation) {
      const first = err.validation[0];
      const field = `${err.validationContext ?? 'body'}${first?.instancePath.replaceAll('/', '.') ?? ''}`;
      return problem(reply, req, 400, 'invalid_request', err.message, { field });
    }
    if (err.statusCode && err.statusCode < 500) return problem(reply, req, err.statusCode, 'bad_request', err.message);
    req.log.error({ err }, 'agent request failed');
    return problem(reply, req, 500, 'internal', err.message);
  });
  app.setNotFoundHandler((req, reply) => problem(reply, req, 404, 'route_not_found', `${req.method} ${req.url}`));

  app.get('/agent/v1/health', async () => ({ ok: true }));

  app.register(async (api) => {
    api.addHook('onRequest', async (req, reply) => {
      if (!authorized(req, d.secret()))
        return problem(reply, req, 401, 'unauthorized', 'a valid host secret is required');
    });
    api.get('/agent/v1/vms', async () => ({ items: d.vms.list() }));
    api.post<{ Params: { id: string }; Body: AgentVmSpec }>(
      '/agent/v1/vms/:id/boot',
      { schema: { params: IdParams, body: AgentVmSpec } },
      async (req) => {
        if (assertVmId(req.params.id) !== req.body.vm_id)
          throw new AgentError(400, 'id_mismatch', 'the path id and body.vm_id differ', { field: 'body.vm_id' });
        return d.vms.boot(req.body);
      },
    );
    api.post<{ Params: { id: string }; Body: { timeout_s?: number } }>(
      '/agent/v1/vms/:id/stop',
      { schema: { params: IdParams, body: StopBody } },
      async (req) => d.vms.stop(req.params.id, req.body?.timeout_s ?? 20),
    );
    for (const action of ['pause', 'resume', 'ctrl-alt-del'] as const) {
      api.post<{ Params: { id: string } }>(
        `/agent/v1/vms/:id/${action}`,
        { schema: { params: IdParams } },
        async (req) => d.vms.action(req.params.id, action),
      );
    }
    api.get<{ Params: { id: string } }>('/agent/v1/vms/:id', { schema: { params: IdParams } }, async (req) =>
      d.vms.get(req.params.id),
    );
    api.delete<{ Params: { id: string } }>(
      '/agent/v1/vms/:id',
      { schema: { params: IdParams } },
      async (req, reply) => {
        await d.vms.remove(req.params.id);
        return reply.code(204).send();
      },
    );
    deviceRoutes(api, { vms: d.vms });
    d.metrics?.routes(api);
    for (const add of d.routes ?? []) add(api);
  });
  return app;
}
