import type {} from '@fastify/websocket';
import { api, type WsRouteDef, wsRoutes } from '@nqvm/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authHook, mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import type { ObserveService } from './observe.service.ts';
import { relay } from './ws-relay.ts';

export function observeRoutes(app: FastifyInstance, authn: Authenticator, observe: ObserveService): void {
  mount(app, authn, api.vmObserve.shell, async ({ params }) => observe.shell(params.id));
  mount(app, authn, api.vmObserve.metricsHistory, async ({ params, query }) => observe.history(params.id, query));
  mount(app, authn, api.vmObserve.flushMetrics, async ({ params }) => observe.flush(params.id));

  // Both relays: authenticated before the upgrade, VM checked to exist and be placed, then frames pass through.
  const wsRoute = (def: WsRouteDef, stream: 'console' | 'metrics') =>
    app.get(
      def.path,
      {
        websocket: true,
        schema: { params: def.params, hide: true },
        onRequest: authHook(def, authn),
        preHandler: async (req: FastifyRequest) => {
          await observe.target((req.params as { id: string }).id);
        },
      },
      (socket, req) => {
        const id = (req.params as { id: string }).id;
        relay(socket, {
          dial: async () => observe.dial(await observe.target(id), id, stream),
          onError: (err) => req.log.debug({ err, vm_id: id }, `${def.operationId} upstream error`),
        });
      },
    );
  wsRoute(wsRoutes.shell, 'console');
  wsRoute(wsRoutes.metrics, 'metrics');
}
