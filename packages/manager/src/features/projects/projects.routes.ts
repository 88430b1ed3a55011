import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { ProjectsService } from './projects.service.ts';

/** Who reaches a project and with which role is checked before these run (the auth hook's project scope). */
export function projectsRoutes(app: FastifyInstance, authn: Authenticator, projects: ProjectsService): void {
  mount(app, authn, api.projects.list, async ({ query, principal }) =>
    projects.list(principal, query.limit ?? 50, query.cursor),
  );
  mount(app, authn, api.projects.create, async ({ body, principal }) =>
    projects.create(principal, actorOf(principal), body),
  );
  mount(app, authn, api.projects.get, async ({ params, principal }) => projects.get(principal, params.id));
  mount(app, authn, api.projects.update, async ({ params, body, principal }) =>
    projects.update(principal, actorOf(principal), params.id, body),
  );
  mount(app, authn, api.projects.delete, async ({ params, principal }) => {
    await projects.delete(actorOf(principal), params.id);
  });
  mount(app, authn, api.projects.members, async ({ params }) => projects.members(params.id));
  mount(app, authn, api.projects.setMember, async ({ params, body, principal }) =>
    projects.setMember(actorOf(principal), params.id, params.user_id, body.role),
  );
  mount(app, authn, api.projects.removeMember, async ({ params, principal }) => {
    await projects.removeMember(actorOf(principal), params.id, params.user_id);
  });
}
