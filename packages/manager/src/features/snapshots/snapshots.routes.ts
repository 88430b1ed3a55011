import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import { type Authenticator, actorOf } from '../../http/principal.ts';
import type { SnapshotsService } from './snapshots.service.ts';

export function snapshotsRoutes(app: FastifyInstance, authn: Authenticator, snapshots: SnapshotsService): void {
  const r = api.snapshots;
  mount(app, authn, r.create, async ({ params, body, principal }) =>
    snapshots.create(params.id, body, actorOf(principal)),
  );
  mount(app, authn, r.listForVm, async ({ params, query }) =>
    snapshots.listForVm(params.id, query.limit, query.cursor),
  );
  mount(app, authn, r.get, async ({ params }) => snapshots.get(params.id));
  mount(app, authn, r.delete, async ({ params, principal }) => snapshots.delete(params.id, actorOf(principal)));
  mount(app, authn, r.instantiate, async ({ params, body, principal }) =>
    snapshots.instantiate(params.id, body.name, actorOf(principal)),
  );
  mount(app, authn, r.clone, async ({ params, body, principal }) =>
    snapshots.clone(params.id, body.name, actorOf(principal)),
  );
  mount(app, authn, r.saveTemplate, async ({ params, body, principal }) =>
    snapshots.saveTemplate(params.id, body.name, body.description, actorOf(principal)),
  );
}
