import { type Static, Type } from 'typebox';
import { CursorQuery, Page, Timestamp, Uuid } from './common.schema.ts';
import { route } from './route.ts';

export const EventResult = Type.Union([Type.Literal('ok'), Type.Literal('error'), Type.Literal('info')]);

export const Event = Type.Object(
  {
    id: Type.String({ description: 'Monotonic cursor' }),
    at: Timestamp,
    actor: Type.String({ description: 'user:<name>, token:<name>, host:<id>, system' }),
    resource_type: Type.String(),
    resource_id: Type.Union([Type.String(), Type.Null()]),
    action: Type.String(),
    result: EventResult,
    detail: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
export type Event = Static<typeof Event>;

export const ListEventsQuery = Type.Object(
  {
    ...CursorQuery,
    resource_type: Type.Optional(Type.String({ maxLength: 32 })),
    resource_id: Type.Optional(Type.String({ maxLength: 64 })),
    action: Type.Optional(Type.String({ maxLength: 64 })),
    result: Type.Optional(EventResult),
    actor: Type.Optional(Type.String({ maxLength: 128 })),
    since: Type.Optional(Timestamp),
    until: Type.Optional(Timestamp),
  },
  { additionalProperties: false },
);

export const EventsWsQuery = Type.Object(
  {
    after: Type.Optional(Type.String({ pattern: '^[0-9]{1,19}$', description: 'Resume after this event id' })),
    resource_type: Type.Optional(Type.String({ maxLength: 32 })),
    resource_id: Type.Optional(Uuid),
  },
  { additionalProperties: false },
);

export const eventRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/events',
    operationId: 'listEvents',
    permission: 'event:read',
    summary: 'Events, newest first, with filters and cursor pagination',
    tag: 'events',
    auth: 'user',
    status: 200,
    query: ListEventsQuery,
    response: Page(Event),
  }),
};
