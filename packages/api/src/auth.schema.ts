import { type Static, Type } from 'typebox';
import { IdParams, Ok, Timestamp, Uuid } from './common.schema.ts';
import { UserPermissionSchema } from './permissions.ts';
import { route } from './route.ts';
import { ChangePasswordRequest } from './user.schema.ts';

export const LoginRequest = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);
export type LoginRequest = Static<typeof LoginRequest>;

export const LoginResponse = Type.Object(
  { token: Type.String(), expires_at: Timestamp, user: Type.Object({ id: Uuid, username: Type.String() }) },
  { additionalProperties: false },
);

export const Me = Type.Object(
  {
    id: Uuid,
    username: Type.String(),
    role: Type.Union([Type.Literal('admin'), Type.Literal('user')]),
    auth: Type.Union([Type.Literal('session'), Type.Literal('token')]),
    permissions: Type.Array(UserPermissionSchema, {
      description: 'What this caller may do: its role, narrowed by the token scope (clients hide the rest)',
    }),
  },
  { additionalProperties: false },
);
export type Me = Static<typeof Me>;

export const ApiToken = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    prefix: Type.String({ description: 'The first characters of the token, to recognise it' }),
    created_at: Timestamp,
    expires_at: Type.Union([Timestamp, Type.Null()]),
    last_used_at: Type.Union([Timestamp, Type.Null()]),
    permissions: Type.Union([Type.Array(UserPermissionSchema), Type.Null()], {
      description: "The token's scope; null: everything its user may do",
    }),
    project_id: Type.Union([Uuid, Type.Null()], {
      description: 'The project the token is scoped to; null: every project its user is a member of',
    }),
  },
  { additionalProperties: false },
);
export type ApiToken = Static<typeof ApiToken>;

export const CreateTokenRequest = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    expires_in_days: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 3650,
        description:
          "Absent: the manager's cap (NQVM_TOKEN_MAX_TTL, 365 days by default), which no token outlives; a token minted by a token never outlives it",
      }),
    ),
    permissions: Type.Optional(
      Type.Array(UserPermissionSchema, {
        uniqueItems: true,
        maxItems: 64,
        description:
          "The token's scope, a subset of the caller's own permissions (403 otherwise); absent: the caller's",
      }),
    ),
    project_id: Type.Optional(
      Type.String({
        format: 'uuid',
        description:
          "The one project the token reaches (absent: the caller's own reach; a project token's, its project)",
      }),
    ),
  },
  { additionalProperties: false },
);
export const CreatedToken = Type.Object(
  { ...ApiToken.properties, token: Type.String({ description: 'Shown once' }) },
  { additionalProperties: false },
);

export const authRoutes = {
  login: route({
    method: 'POST',
    path: '/v1/auth/login',
    operationId: 'login',
    permission: 'public',
    summary: 'Log in with a username and password; returns a session token and sets a session cookie',
    tag: 'auth',
    auth: 'public',
    status: 200,
    body: LoginRequest,
    response: LoginResponse,
  }),
  logout: route({
    method: 'POST',
    path: '/v1/auth/logout',
    operationId: 'logout',
    permission: 'session',
    summary: 'End the current session',
    tag: 'auth',
    auth: 'user',
    status: 200,
    response: Ok,
  }),
  me: route({
    method: 'GET',
    path: '/v1/auth/me',
    operationId: 'me',
    permission: 'session',
    summary: 'The authenticated user',
    tag: 'auth',
    auth: 'user',
    status: 200,
    response: Me,
  }),
  changePassword: route({
    method: 'POST',
    path: '/v1/auth/password',
    operationId: 'changePassword',
    permission: 'session',
    summary: "Change one's own password (the current one is needed); the user's other sessions end, API tokens stay",
    tag: 'auth',
    auth: 'user',
    status: 200,
    body: ChangePasswordRequest,
    response: Ok,
  }),
  listTokens: route({
    method: 'GET',
    path: '/v1/tokens',
    operationId: 'listTokens',
    permission: 'token:read',
    summary: 'API tokens of the current user',
    tag: 'tokens',
    auth: 'user',
    status: 200,
    response: Type.Object({ items: Type.Array(ApiToken) }, { additionalProperties: false }),
  }),
  createToken: route({
    method: 'POST',
    path: '/v1/tokens',
    operationId: 'createToken',
    permission: 'token:write',
    summary: 'Create an API token; the token value is shown only in this response',
    tag: 'tokens',
    auth: 'user',
    status: 201,
    body: CreateTokenRequest,
    response: CreatedToken,
  }),
  deleteToken: route({
    method: 'DELETE',
    path: '/v1/tokens/:id',
    operationId: 'deleteToken',
    permission: 'token:write',
    summary: 'Revoke an API token',
    tag: 'tokens',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
};
