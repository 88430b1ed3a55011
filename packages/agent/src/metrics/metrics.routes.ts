import websocket from '@fastify/websocket';
import { agentApi, writeProblem } from '@nqvm/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { routeSchema } from '../mount.ts';
import type { MetricsHub } from './metrics-hub.ts';

export interface MetricsRoutesDeps {
  hub: MetricsHub;
  /** The agent's host-secret check; runs before the upgrade, so a refused caller gets a plain 401. */
  authorize: onRequestHookHandler;
  exists(vmId: string): boolean | Promise<boolean>;
}

const notFound = (req: FastifyRequest, reply: FastifyReply, id: string) =>
  writeProblem(reply, { status: 404, code: 'vm_not_found', detail: `vm ${id} not found`, requestId: String(req.id) });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * `GET /agent/v1/vms/:id/metrics` (one sample now) and `GET /agent/v1/vms/:id/metrics/ws` (one JSON text frame
 * per second, the same shape). Register with `app.register(metricsRoutes, deps)`.
 */
export async function metricsRoutes(app: FastifyInstance, deps: MetricsRoutesDeps): Promise<void> {
  if (!app.hasDecorator('websocketServer')) await app.register(websocket);
  const known = async (id: string) => UUID.test(id) && (await deps.exists(id));
  const opts = {
    onRequest: deps.authorize,
    preHandler: async (req: FastifyRequest, reply: FastifyReply) => {
      const id = (req.params as { id: string }).id;
      if (!(await known(id))) return notFound(req, reply, id);
    },
  };
  const r = agentApi.observe;
  app.get<{ Params: { id: string } }>(
    r.metrics.path,
    { ...opts, schema: routeSchema(r.metrics) },
    async (req, reply) => (await deps.hub.sampleOnce(req.params.id)) ?? notFound(req, reply, req.params.id),
  );
  const ws = { ...opts, schema: routeSchema(r.metricsWs), websocket: true } as const;
  app.get<{ Params: { id: string } }>(r.metricsWs.path, ws, (socket, req) => {
    const off = deps.hub.subscribe(req.params.id, (sample) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(sample));
    });
    socket.on('close', off);
  });
}
