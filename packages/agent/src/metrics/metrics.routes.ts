import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { MetricsHub } from './metrics-hub.ts';

export interface MetricsRoutesDeps {
  hub: MetricsHub;
  /** The agent's host-secret check; runs before the upgrade, so a refused caller gets a plain 401. */
  authorize: onRequestHookHandler;
  exists(vmId: string): boolean | Promise<boolean>;
}

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
      if (!(await known(id))) return reply.code(404).send({ code: 'vm_not_found', detail: `vm ${id} not found` });
    },
  };
  app.get<{ Params: { id: string } }>('/agent/v1/vms/:id/metrics', opts, async (req, reply) => {
    const sample = await deps.hub.sampleOnce(req.params.id);
    if (!sample) return reply.code(404).send({ code: 'vm_not_found', detail: `vm ${req.params.id} not found` });
    return sample;
  });
  app.get<{ Params: { id: string } }>('/agent/v1/vms/:id/metrics/ws', { ...opts, websocket: true }, (socket, req) => {
    const off = deps.hub.subscribe(req.params.id, (sample) => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(sample));
    });
    socket.on('close', off);
  });
}
