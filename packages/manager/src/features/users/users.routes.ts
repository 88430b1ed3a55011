import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { UsersService } from './users.service.ts';

export function usersRoutes(app: FastifyInstance, authn: Authenticator, users: UsersService): void {
  mount(app, authn, api.users.list, async ({ query }) => users.list(query.limit ?? 50, query.cursor));
  mount(app, authn, api.users.create, async ({ body, principal }) => users.create(body, actorOf(principal)));
  mount(app, authn, api.users.get, async ({ params }) => users.get(params.id));
  mount(app, authn, api.users.update, async ({ params, body, principal }) =>
    users.update(params.id, body, actorOf(principal)),
  );
  mount(app, authn, api.users.delete, async ({ params, principal }) => users.delete(params.id, actorOf(principal)));
}
