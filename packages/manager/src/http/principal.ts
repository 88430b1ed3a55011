import { type Permission, ROLE_PERMISSIONS, USER_PERMISSIONS, type UserPermission } from '@nqvm/api';

/** A user's role in one project. */
export type ProjectRole = 'owner' | 'operator' | 'viewer';

export type Principal =
  | {
      kind: 'user';
      userId: string;
      username: string;
      role: 'admin' | 'user';
      via: 'session' | 'token';
      credentialId: string;
      tokenName?: string;
      /** A token's scope: the permissions it was minted with (absent: all of its user's). */
      scope?: readonly UserPermission[];
      /** When a token expires (absent: a session, or a token from before expiries were capped). */
      expiresAt?: Date;
      /**
       * The projects the caller reaches and its role in each: its memberships, or, for a token minted for one
       * project, that project alone (a global admin's token then acts as that project's owner).
       */
      projects: Readonly<Record<string, ProjectRole>>;
      /** The project a token was minted for. */
      projectId?: string;
    }
  | { kind: 'host'; hostId: string }
  | { kind: 'guest'; vmId: string }
  | { kind: 'anonymous' };

/** How the events log names who did something. Never contains a secret. */
export function actorOf(p: Principal): string {
  switch (p.kind) {
    case 'user':
      return p.via === 'token' ? `token:${p.tokenName ?? p.credentialId}@${p.username}` : `user:${p.username}`;
    case 'host':
      return `host:${p.hostId}`;
    case 'guest':
      return `guest:${p.vmId}`;
    case 'anonymous':
      return 'anonymous';
  }
}

/** Checks credentials; implemented by the auth and hosts features, passed to the HTTP layer. */
export interface Authenticator {
  user(token: string): Promise<Principal | null>;
  host(hostId: string, secret: string): Promise<Principal | null>;
  guest(vmId: string, token: string): Promise<Principal | null>;
  /** What resource a route path's `:id` names and how to find its project (features/projects/projects.scope.ts). */
  resource?(path: string): ResourceGuard | undefined;
  /** Whether a project exists (a create naming one). */
  projectExists?(id: string): Promise<boolean>;
}

/** A kind of resource whose routes take its id as `:id`: its NotFound name and its project. */
export interface ResourceGuard {
  kind: string;
  /** What a caller of another project may do with a public one (see checkAccess). */
  publicUse?: readonly UserPermission[];
  /** Its project; undefined when there is no such resource (the handler answers 404 then). */
  owner(id: string): Promise<{ projectId: string; public?: boolean } | undefined>;
}

export type UserPrincipal = Extract<Principal, { kind: 'user' }>;

/** Whether the caller acts as a global admin: an admin user, not through a token minted for one project. */
export function isAdmin(p: Principal): boolean {
  return p.kind === 'user' && p.role === 'admin' && p.projectId === undefined;
}

/** What every signed-in user may do, member of a project or not: its own session and tokens. */
const OWN: readonly UserPermission[] = ['session', 'token:read', 'token:write'];

function narrowed(p: UserPrincipal, own: readonly UserPermission[]): UserPermission[] {
  return p.scope ? own.filter((x) => x === 'session' || p.scope!.includes(x)) : [...own];
}

/**
 * Every permission the caller holds in some scope: a global admin's all, anyone else's the union of its roles in
 * its projects; narrowed by a token's scope (which never takes `session`).
 */
export function permissionsOf(p: Principal): UserPermission[] {
  if (p.kind !== 'user') return [];
  if (isAdmin(p)) return narrowed(p, USER_PERMISSIONS);
  const own = new Set<UserPermission>(OWN);
  for (const role of Object.values(p.projects)) for (const x of ROLE_PERMISSIONS[role]) own.add(x);
  return narrowed(p, [...own]);
}

/** The permissions the caller holds in one project (none outside its projects; all of them for a global admin). */
export function permissionsIn(p: Principal, projectId: string): UserPermission[] {
  if (p.kind !== 'user') return [];
  if (isAdmin(p)) return narrowed(p, USER_PERMISSIONS);
  const role = p.projects[projectId];
  return role ? narrowed(p, ROLE_PERMISSIONS[role]) : [];
}

/** Whether the caller may use a route declaring `permission`: the one check every route goes through. */
export function allows(p: Principal, permission: Permission): boolean {
  switch (permission) {
    case 'public':
      return true;
    case 'host-agent':
      return p.kind === 'host';
    case 'guest-agent':
      return p.kind === 'guest';
    default:
      return permissionsOf(p).includes(permission);
  }
}
