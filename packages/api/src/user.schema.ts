import { type Static, Type } from 'typebox';
import { CursorQuery, IdParams, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

/** The password policy, the same for a new user and a changed password (the console checks it before sending). */
export const PASSWORD_MIN_LENGTH = 12;
export const Password = Type.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: 1024,
  description: `At least ${PASSWORD_MIN_LENGTH} characters`,
});

export const Username = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[a-zA-Z0-9][a-zA-Z0-9._@-]*$',
  description: 'Letters, digits, dot, dash, underscore and @; starts with a letter or digit',
});
export const UserRole = Type.Union([Type.Literal('admin'), Type.Literal('user')], {
  description: '`admin`: everything (hosts, users, all resources); `user`: resources only',
});

export const User = Type.Object(
  {
    id: Uuid,
    username: Type.String(),
    role: UserRole,
    disabled: Type.Boolean({ description: 'A disabled user cannot log in; their sessions and tokens are refused' }),
    created_at: Timestamp,
    last_login_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type User = Static<typeof User>;

export const CreateUserRequest = Type.Object(
  { username: Username, password: Password, role: Type.Optional(UserRole) },
  { additionalProperties: false },
);
export const UpdateUserRequest = Type.Object(
  { role: Type.Optional(UserRole), disabled: Type.Optional(Type.Boolean()) },
  { additionalProperties: false, minProperties: 1 },
);
export const ChangePasswordRequest = Type.Object(
  { current_password: Type.String({ minLength: 1, maxLength: 1024 }), new_password: Password },
  { additionalProperties: false },
);

export const userRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/users',
    operationId: 'listUsers',
    permission: 'user:read',
    summary: 'Users, by username',
    tag: 'users',
    auth: 'user',
    status: 200,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(User),
  }),
  create: route({
    method: 'POST',
    path: '/v1/users',
    operationId: 'createUser',
    permission: 'user:write',
    summary: 'Create a user with an initial password (409 user_exists when the username is taken)',
    tag: 'users',
    auth: 'user',
    status: 201,
    body: CreateUserRequest,
    response: User,
  }),
  get: route({
    method: 'GET',
    path: '/v1/users/:id',
    operationId: 'getUser',
    permission: 'user:read',
    summary: 'One user',
    tag: 'users',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: User,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/users/:id',
    operationId: 'updateUser',
    permission: 'user:write',
    summary:
      "Change a user's role or disable/enable them: disabling ends their sessions and tokens at once; the last active admin cannot be disabled or demoted (409 last_admin)",
    tag: 'users',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: UpdateUserRequest,
    response: User,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/users/:id',
    operationId: 'deleteUser',
    permission: 'user:write',
    summary: 'Delete a user with their sessions and tokens (the last active admin: 409 last_admin)',
    tag: 'users',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
};
