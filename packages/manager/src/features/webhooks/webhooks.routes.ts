import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { WebhooksService } from './webhooks.service.ts';

export function webhooksRoutes(app: FastifyInstance, authn: Authenticator, webhooks: WebhooksService) {
  mount(app, authn, api.webhooks.list, async ({ query }) => webhooks.list(query.limit ?? 50, query.cursor));
  mount(app, authn, api.webhooks.create, async ({ body, principal }) => webhooks.create(body, actorOf(principal)));
  mount(app, authn, api.webhooks.get, async ({ params }) => webhooks.get(params.id));
  mount(app, authn, api.webhooks.update, async ({ params, body, principal }) =>
    webhooks.update(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.webhooks.delete, async ({ params, principal }) =>
    webhooks.delete(params.id, actorOf(principal)),
  );
  mount(app, authn, api.webhooks.deliveries, async ({ params, query }) => webhooks.deliveries(params.id, query));
}
