import { type Static, type TSchema, Type } from 'typebox';
import { IdParams } from './common.schema.ts';
import { Event, EventsWsQuery } from './event.schema.ts';
import type { Permission } from './permissions.ts';
import { VmMetricsSample } from './vm-observe.schema.ts';

/** Terminal bytes, both ways: binary WebSocket frames, passed through unchanged. */
export const TerminalBytes = Type.String({
  contentEncoding: 'binary',
  description: 'A binary frame: bytes from the serial console, or keystrokes for it',
});

export const ConsoleHello = Type.Object(
  { type: Type.Literal('hello'), scrollback_bytes: Type.Integer({ minimum: 0 }) },
  { additionalProperties: false, description: 'First text frame; the scrollback follows as binary frames' },
);
export const ConsoleStatus = Type.Object(
  {
    type: Type.Literal('status'),
    state: Type.Union([Type.Literal('connected'), Type.Literal('reconnecting'), Type.Literal('vm_gone')]),
  },
  { additionalProperties: false, description: 'The console connection to the VMM changed' },
);
export const ConsoleError = Type.Object(
  { type: Type.Literal('error'), message: Type.String() },
  { additionalProperties: false },
);
export const ConsoleResize = Type.Object(
  {
    type: Type.Literal('resize'),
    cols: Type.Integer({ minimum: 1, maximum: 1000 }),
    rows: Type.Integer({ minimum: 1, maximum: 1000 }),
  },
  { additionalProperties: false, description: "The viewer's terminal size; the guest agent applies it with stty" },
);
export type ConsoleResize = Static<typeof ConsoleResize>;

export const EventsWsEvent = Type.Object(
  { type: Type.Literal('event'), event: Event },
  { additionalProperties: false, description: 'One event, in id order; the backlog after `after` comes first' },
);
export const EventsWsReady = Type.Object(
  { type: Type.Literal('ready'), after: Type.Union([Type.String(), Type.Null()]) },
  { additionalProperties: false, description: 'The backlog is sent; live events follow' },
);

/** One WebSocket endpoint of the public API: upgraded with GET, authenticated before the upgrade. */
export interface WsRouteDef {
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  auth: 'user';
  permission: Permission;
  params?: TSchema;
  query?: TSchema;
  /** Frames the server sends, by message name. */
  receive: Record<string, TSchema>;
  /** Frames the client may send, by message name. */
  send: Record<string, TSchema>;
}

/** The public API's WebSockets; the manager mounts them at these paths with these schemas. */
export const wsRoutes = {
  shell: {
    path: '/v1/vms/:id/shell/ws',
    operationId: 'vmShellWs',
    permission: 'vm:shell',
    summary: "The VM's serial console: terminal bytes both ways as binary frames, JSON control as text frames",
    tag: 'vms',
    auth: 'user',
    params: IdParams,
    receive: { TerminalBytes, ConsoleHello, ConsoleStatus, ConsoleError },
    send: { TerminalBytes, ConsoleResize },
  },
  metrics: {
    path: '/v1/vms/:id/metrics/ws',
    operationId: 'vmMetricsWs',
    permission: 'vm:read',
    summary: 'Live metrics of a VM: one sample (host and guest) per second as a JSON text frame',
    tag: 'vms',
    auth: 'user',
    params: IdParams,
    receive: { VmMetricsSample },
    send: {},
  },
  events: {
    path: '/v1/events/ws',
    operationId: 'eventsWs',
    permission: 'event:read',
    summary: 'Events as they happen (after a backlog from `after`), optionally filtered by resource',
    tag: 'events',
    auth: 'user',
    query: EventsWsQuery,
    receive: { EventsWsEvent, EventsWsReady },
    send: {},
  },
} satisfies Record<string, WsRouteDef>;
