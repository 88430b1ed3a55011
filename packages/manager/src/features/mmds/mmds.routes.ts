import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import type { MmdsService } from './mmds.service.ts';

export function mmdsRoutes(app: FastifyInstance, authn: Authenticator, mmds: MmdsService): void {
  mount(app, authn, api.mmds.get, async ({ params }) => mmds.get(params.id));
  mount(app, authn, api.mmds.put, async ({ params, body }) => mmds.put(params.id, body));
  mount(app, authn, api.mmds.patch, async ({ params, body }) => mmds.patch(params.id, body));
  mount(app, authn, api.mmds.getConfig, async ({ params }) => mmds.getConfig(params.id));
  mount(app, authn, api.mmds.putConfig, async ({ params, body }) => mmds.putConfig(params.id, body));
}
