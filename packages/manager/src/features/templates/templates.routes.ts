import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import { createIn, visibleProjects } from '../../http/scope.ts';
import type { TemplatesService } from './templates.service.ts';

export function templatesRoutes(app: FastifyInstance, authn: Authenticator, templates: TemplatesService) {
  mount(app, authn, api.templates.list, async ({ query, principal }) =>
    templates.list(query.limit ?? 100, query.cursor, {
      projects: visibleProjects(principal),
      projectId: query.project_id,
    }),
  );
  mount(app, authn, api.templates.get, async ({ params }) => templates.get(params.id));
  mount(app, authn, api.templates.create, async ({ body, principal }) => {
    const projectId = await createIn(authn, principal, body.project_id, 'template:write');
    return templates.create({ ...body, project_id: projectId }, actorOf(principal));
  });
  mount(app, authn, api.templates.replace, async ({ params, body, principal }) =>
    templates.replace(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.templates.delete, async ({ params, principal }) =>
    templates.delete(params.id, actorOf(principal)),
  );
}
