import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import type { OperationsService } from './operations.service.ts';

export function operationsRoutes(app: FastifyInstance, authn: Authenticator, ops: OperationsService): void {
  mount(app, authn, api.operations.list, async ({ query }) =>
    ops.list({ vmId: query.vm_id, state: query.state, kind: query.kind }, query.limit ?? 50, query.cursor),
  );
  mount(app, authn, api.operations.get, async ({ params }) => ops.get(params.id));
}
