import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { AlertsService } from './alerts.service.ts';

export function alertsRoutes(app: FastifyInstance, authn: Authenticator, alerts: AlertsService) {
  mount(app, authn, api.alertRules.list, async ({ query }) => alerts.list(query.limit ?? 50, query.cursor));
  mount(app, authn, api.alertRules.create, async ({ body, principal }) => alerts.create(body, actorOf(principal)));
  mount(app, authn, api.alertRules.get, async ({ params }) => alerts.get(params.id));
  mount(app, authn, api.alertRules.update, async ({ params, body, principal }) =>
    alerts.update(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.alertRules.delete, async ({ params, principal }) =>
    alerts.delete(params.id, actorOf(principal)),
  );
}
