import type { UserPermission } from '@nqvm/api';
import { type AnyColumn, inArray, type SQL, sql } from 'drizzle-orm';
import { DEFAULT_PROJECT_ID } from '../db/schema.ts';
import { Forbidden, NotFound } from '../domain/errors.ts';
import { type Authenticator, isAdmin, type Principal, permissionsIn, permissionsOf } from './principal.ts';

/**
 * Project scope: the one resource-level check. The route-level check (`allows`, in the auth hook) asks whether the
 * caller holds a route's permission in some scope; this one asks whether it holds it in the project of the
 * resource the route names. A resource in a project the caller does not reach answers 404 with the same body as a
 * missing one, so nothing leaks its existence; a member whose role lacks the permission gets 403.
 */

/** Where a resource lives: its project, and whether every project may read it (public images and templates). */
export interface Owned {
  projectId: string;
  public?: boolean;
}

/** The projects whose resources the caller sees; null: all of them (a global admin). */
export function visibleProjects(p: Principal): string[] | null {
  if (p.kind !== 'user') return [];
  if (isAdmin(p)) return null;
  return Object.keys(p.projects);
}

/** Whether the caller reaches a project at all (any role). */
export function reaches(p: Principal, projectId: string): boolean {
  return p.kind === 'user' && (isAdmin(p) || projectId in p.projects);
}

/**
 * Throws unless the caller may use `permission` on a resource of kind `kind` (its NotFound name) owned as `owned`.
 * `publicUse`: what anyone holding the permission somewhere may do with a public resource of another project
 * (read an image, instantiate a template into its own project).
 */
export function checkAccess(
  p: Principal,
  kind: string,
  id: string,
  owned: Owned,
  permission: UserPermission,
  publicUse: readonly UserPermission[] = [],
): void {
  if (permissionsIn(p, owned.projectId).includes(permission)) return;
  if (owned.public && publicUse.includes(permission) && permissionsOf(p).includes(permission)) return;
  if (!reaches(p, owned.projectId) && !owned.public) throw new NotFound(kind, id);
  throw new Forbidden(`this needs the permission ${permission} in the project of ${kind} ${id}`);
}

/**
 * The project a create goes into: the one asked for, else the caller's default (a token's project, else its first
 * membership, else `default`). A project the caller cannot see answers 404; one where its role lacks the
 * permission, 403. `exists` tells a global admin's typo from a project.
 */
export async function targetProject(
  p: Principal,
  requested: string | undefined,
  permission: UserPermission,
  exists: (id: string) => Promise<boolean>,
  fallback: string,
): Promise<string> {
  let id = requested;
  if (id === undefined && p.kind === 'user')
    id = p.projectId ?? (isAdmin(p) ? undefined : Object.keys(p.projects)[0]) ?? fallback;
  id ??= fallback;
  const field = requested === undefined ? undefined : 'body.project_id';
  if (!reaches(p, id) || !(await exists(id))) throw Object.assign(new NotFound('project', id), { field });
  if (!permissionsIn(p, id).includes(permission))
    throw new Forbidden(`this needs the permission ${permission} in project ${id}`, field);
  return id;
}

/** A list's condition: the row's project is one of `ids` (an empty list matches nothing). */
export function inProjects(column: AnyColumn, ids: string[]): SQL {
  return ids.length ? inArray(column, ids) : sql`false`;
}

/** The project a create by this caller goes into (see targetProject), with the app's project lookup. */
export function createIn(
  authn: Authenticator,
  p: Principal,
  requested: string | undefined,
  permission: UserPermission,
): Promise<string> {
  return targetProject(p, requested, permission, authn.projectExists ?? (async () => true), DEFAULT_PROJECT_ID);
}

/** The resource-level check for an id that is not the route's own `:id` (a bulk action's ids). */
export async function checkId(
  authn: Authenticator,
  p: Principal,
  path: string,
  id: string,
  permission: UserPermission,
) {
  const guard = authn.resource?.(path);
  const owned = guard && (await guard.owner(id));
  if (guard && owned) checkAccess(p, guard.kind, id, owned, permission, guard.publicUse);
}
