import { eq } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { images, operations, projects, templates, vms } from '../../db/schema.ts';
import type { ResourceGuard } from '../../http/principal.ts';
import { functionInvocations, functions } from '../functions/functions.table.ts';
import { snapshots } from '../snapshots/snapshots.table.ts';

/**
 * What each resource route's `:id` names and how its project is found: the auth hook checks the caller's
 * permission in that project (http/scope.ts) for every route under these paths, HTTP and WebSocket alike. A feature
 * whose resources belong to projects adds its path here.
 */
export function resourceGuards(db: Db): Map<string, ResourceGuard> {
  const one = async <T>(rows: Promise<T[]>) => (await rows)[0];
  return new Map<string, ResourceGuard>([
    [
      '/v1/vms/:id',
      { kind: 'vm', owner: (id) => one(db.select({ projectId: vms.projectId }).from(vms).where(eq(vms.id, id))) },
    ],
    [
      '/v1/images/:id',
      {
        kind: 'image',
        publicUse: ['image:read'],
        owner: (id) =>
          one(db.select({ projectId: images.projectId, public: images.public }).from(images).where(eq(images.id, id))),
      },
    ],
    [
      '/v1/templates/:id',
      {
        kind: 'template',
        // Instantiating a public template makes a VM in the caller's own project (checked by the create).
        publicUse: ['template:read', 'vm:write'],
        owner: (id) =>
          one(
            db
              .select({ projectId: templates.projectId, public: templates.public })
              .from(templates)
              .where(eq(templates.id, id)),
          ),
      },
    ],
    [
      '/v1/snapshots/:id',
      {
        kind: 'snapshot',
        owner: (id) => one(db.select({ projectId: snapshots.projectId }).from(snapshots).where(eq(snapshots.id, id))),
      },
    ],
    [
      '/v1/operations/:id',
      {
        kind: 'operation',
        // An operation belongs to its VM's project; one without a VM (or whose VM is gone) is a global admin's.
        owner: async (id) => {
          const row = await one(
            db
              .select({ projectId: vms.projectId })
              .from(operations)
              .leftJoin(vms, eq(vms.id, operations.vmId))
              .where(eq(operations.id, id)),
          );
          return row && { projectId: row.projectId ?? '' };
        },
      },
    ],
    [
      '/v1/functions/:id',
      {
        kind: 'function',
        owner: (id) => one(db.select({ projectId: functions.projectId }).from(functions).where(eq(functions.id, id))),
      },
    ],
    [
      '/v1/invocations/:id',
      {
        kind: 'invocation',
        // An invocation belongs to its function's project.
        owner: (id) =>
          one(
            db
              .select({ projectId: functions.projectId })
              .from(functionInvocations)
              .innerJoin(functions, eq(functions.id, functionInvocations.functionId))
              .where(eq(functionInvocations.id, id)),
          ),
      },
    ],
    [
      '/v1/projects/:id',
      {
        kind: 'project',
        owner: (id) => one(db.select({ projectId: projects.id }).from(projects).where(eq(projects.id, id))),
      },
    ],
  ]);
}

/** The guard of a route path: the longest registered prefix it starts with. */
export function guardOf(guards: Map<string, ResourceGuard>, path: string): ResourceGuard | undefined {
  for (const [prefix, guard] of guards) if (path === prefix || path.startsWith(`${prefix}/`)) return guard;
  return undefined;
}
