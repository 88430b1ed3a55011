import { api } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mount } from '../../http/mount.ts';
import type { Authenticator } from '../../http/principal.ts';
import { visibleProjects } from '../../http/scope.ts';
import type { OperationsService } from './operations.service.ts';

export function operationsRoutes(app: FastifyInstance, authn: Authenticator, ops: OperationsService): void {
  mount(app, authn, api.operations.list, async ({ query, principal }) =>
    ops.list(
      {
        vmId: query.vm_id,
        state: query.state,
        kind: query.kind,
        projects: visibleProjects(principal),
        projectId: query.project_id,
      },
      query.limit ?? 50,
      query.cursor,
    ),
  );
  mount(app, authn, api.operations.get, async ({ params }) => ops.get(params.id));
}
