import { type Static, Type } from 'typebox';
import { Uuid } from './common.schema.ts';
import { route } from './route.ts';

export const LogSource = Type.Union([
  Type.Literal('manager'),
  Type.Literal('agent'),
  Type.Literal('vm-console'),
  Type.Literal('vm-vmm'),
]);
export type LogSource = Static<typeof LogSource>;

export const LOG_MAX_LINES = 5000;

export const LogTailQuery = Type.Object(
  {
    source: LogSource,
    vm_id: Type.Optional(Uuid),
    host_id: Type.Optional(Uuid),
    lines: Type.Optional(Type.Integer({ minimum: 1, maximum: LOG_MAX_LINES, default: 100 })),
    follow: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);
export type LogTailQuery = Static<typeof LogTailQuery>;

export const logRoutes = {
  tail: route({
    method: 'GET',
    path: '/v1/logs/tail',
    operationId: 'tailLog',
    permission: 'log:read',
    summary:
      'The last lines of a known log (text/plain); follow=true keeps streaming new lines until the client closes',
    tag: 'logs',
    auth: 'user',
    status: 200,
    query: LogTailQuery,
    rawResponse: true,
  }),
};
