import { type Static, Type } from 'typebox';
import { CursorQuery, IdParams, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

/** A host join token as listed: never the token itself (only its hash is stored). */
export const JoinToken = Type.Object(
  {
    id: Uuid,
    description: Type.String(),
    created_by: Type.String(),
    created_at: Timestamp,
    expires_at: Timestamp,
    used_at: Type.Union([Timestamp, Type.Null()]),
    host_id: Type.Union([Uuid, Type.Null()], { description: 'The host that joined with it' }),
    state: Type.Union([Type.Literal('valid'), Type.Literal('used'), Type.Literal('expired')]),
  },
  { additionalProperties: false },
);
export type JoinToken = Static<typeof JoinToken>;

export const CreateJoinTokenRequest = Type.Object(
  {
    ttl_s: Type.Optional(
      Type.Integer({
        minimum: 60,
        maximum: 7 * 24 * 3600,
        default: 3600,
        description: 'Seconds until the token expires (1 minute to 7 days; default 1 hour)',
      }),
    ),
    description: Type.Optional(Type.String({ maxLength: 200, description: 'What the token is for' })),
  },
  { additionalProperties: false },
);
export type CreateJoinTokenRequest = Static<typeof CreateJoinTokenRequest>;

export const CreatedJoinToken = Type.Object(
  {
    ...JoinToken.properties,
    token: Type.String({ description: 'The token, shown only in this answer: one host joins with it, once' }),
  },
  { additionalProperties: false },
);
export type CreatedJoinToken = Static<typeof CreatedJoinToken>;

export const joinTokenRoutes = {
  create: route({
    method: 'POST',
    path: '/v1/join-tokens',
    operationId: 'createJoinToken',
    permission: 'host:write',
    summary: 'Create a host join token (admin): expires, joins one host once, shown only in this answer',
    tag: 'join-tokens',
    auth: 'user',
    status: 201,
    body: CreateJoinTokenRequest,
    response: CreatedJoinToken,
  }),
  list: route({
    method: 'GET',
    path: '/v1/join-tokens',
    operationId: 'listJoinTokens',
    permission: 'host:read',
    summary: 'List host join tokens (admin), without the tokens themselves, newest first, with cursor pagination',
    tag: 'join-tokens',
    auth: 'user',
    status: 200,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(JoinToken),
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/join-tokens/:id',
    operationId: 'deleteJoinToken',
    permission: 'host:write',
    summary: 'Revoke a host join token (admin)',
    tag: 'join-tokens',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
};
