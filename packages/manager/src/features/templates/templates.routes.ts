import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { TemplatesService } from './templates.service.ts';

export function templatesRoutes(app: FastifyInstance, authn: Authenticator, templates: TemplatesService) {
  mount(app, authn, api.templates.list, async ({ query }) => templates.list(query.limit ?? 100, query.cursor));
  mount(app, authn, api.templates.get, async ({ params }) => templates.get(params.id));
  mount(app, authn, api.templates.create, async ({ body, principal }) => templates.create(body, actorOf(principal)));
  mount(app, authn, api.templates.replace, async ({ params, body, principal }) =>
    templates.replace(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.templates.delete, async ({ params, principal }) =>
    templates.delete(params.id, actorOf(principal)),
  );
}
