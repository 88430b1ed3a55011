import { Type } from 'typebox';

/**
 * What a route needs from its caller, declared once in the route table (`permission`), checked by the
 * manager in one place before any handler runs, and shown in the OpenAPI document as `x-permission`.
 *
 * Routes callable without a user carry the permission of their credential kind: `public` (nobody special),
 * `host-agent` (a host's secret) and `guest-agent` (a VM's token); every other permission is a user's.
 */
export const USER_PERMISSIONS = [
  'session',
  'token:read',
  'token:write',
  'project:read',
  'project:write',
  'member:write',
  'event:read',
  'operation:read',
  'stats:read',
  'image:read',
  'image:write',
  'template:read',
  'template:write',
  'vm:read',
  'vm:write',
  'vm:shell',
  'mmds:read',
  'mmds:write',
  'snapshot:read',
  'snapshot:write',
  'host:read',
  'host:write',
  'log:read',
  'webhook:read',
  'webhook:write',
  'alert:read',
  'alert:write',
  'quota:read',
  'quota:write',
  'usage:read',
  'user:read',
  'user:write',
  'function:read',
  'function:write',
  'function:invoke',
] as const;

export type UserPermission = (typeof USER_PERMISSIONS)[number];
export const UserPermissionSchema = Type.Unsafe<UserPermission>({
  type: 'string',
  enum: [...USER_PERMISSIONS],
  description: 'A permission a route may declare (x-permission)',
});
export type Permission = UserPermission | 'public' | 'host-agent' | 'guest-agent';

/** The roles a user holds: `admin` is global, the others are held per project. */
export const ROLES = ['admin', 'owner', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

const VIEWER: readonly UserPermission[] = [
  'session',
  'token:read',
  'token:write',
  'project:read',
  'event:read',
  'operation:read',
  'stats:read',
  'image:read',
  'template:read',
  'vm:read',
  'snapshot:read',
  'function:read',
];
/** Create, change, act on and delete resources; shell and MMDS data, which a viewer never sees. */
const OPERATOR: readonly UserPermission[] = [
  ...VIEWER,
  'image:write',
  'template:write',
  'vm:write',
  'vm:shell',
  'mmds:read',
  'mmds:write',
  'snapshot:write',
  'function:write',
  'function:invoke',
];

/** An operator who also manages the project's members. */
const OWNER: readonly UserPermission[] = [...OPERATOR, 'member:write'];

/**
 * Every role's permissions. Hosts, users, creating, renaming and deleting projects, the manager's log, webhooks and
 * alert rules (global) are the admin's alone.
 */
export const ROLE_PERMISSIONS: Record<Role, readonly UserPermission[]> = {
  admin: USER_PERMISSIONS,
  owner: [...OWNER, 'quota:read', 'usage:read'],
  operator: OPERATOR,
  viewer: VIEWER,
};

export function isUserPermission(p: Permission): p is UserPermission {
  return (USER_PERMISSIONS as readonly string[]).includes(p);
}
