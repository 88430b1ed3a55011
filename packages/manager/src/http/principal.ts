import { type Permission, ROLE_PERMISSIONS, type Role, type UserPermission } from '@nqvm/api';

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
}

/** The role a user's permissions come from: `users.role` is `admin` or `user` (an operator). */
export function roleOf(p: Extract<Principal, { kind: 'user' }>): Role {
  return p.role === 'admin' ? 'admin' : 'operator';
}

/** Every permission the caller holds: its role's, narrowed by a token's scope (which never takes `session`). */
export function permissionsOf(p: Principal): UserPermission[] {
  if (p.kind !== 'user') return [];
  const own = ROLE_PERMISSIONS[roleOf(p)];
  return p.scope ? own.filter((x) => x === 'session' || p.scope!.includes(x)) : [...own];
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
