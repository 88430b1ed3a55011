import { type Static, Type } from 'typebox';
import { CursorQuery, Description, IdParams, Page, Timestamp, Uuid } from './common.schema.ts';
import { Event } from './event.schema.ts';
import { route } from './route.ts';

export const EventPattern = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^(\\*|[a-z0-9_]+\\.(\\*|[a-z0-9_-]+))$',
  description: '`<resource_type>.<action>` of the events to send (`vm.state`, `alert.firing`), `vm.*`, or `*`',
});

export const WebhookSecret = Type.String({
  minLength: 16,
  maxLength: 256,
  pattern: '^[\\x21-\\x7e]+$',
  description: 'HMAC-SHA256 key the deliveries are signed with (printable ASCII, no spaces)',
});

export const Webhook = Type.Object(
  {
    id: Uuid,
    url: Type.String(),
    description: Type.String(),
    events: Type.Array(EventPattern),
    enabled: Type.Boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
);
export type Webhook = Static<typeof Webhook>;

export const CreatedWebhook = Type.Object(
  {
    ...Webhook.properties,
    secret: Type.String({ description: 'Shown once: the key to verify `Nqvm-Signature` with' }),
  },
  { additionalProperties: false },
);
export type CreatedWebhook = Static<typeof CreatedWebhook>;

const WebhookUrl = Type.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL the events are POSTed to' });
const Events = Type.Array(EventPattern, { minItems: 1, maxItems: 32, uniqueItems: true });

export const WebhookRequest = Type.Object(
  {
    url: WebhookUrl,
    description: Type.Optional(Description),
    events: Type.Optional({ ...Events, default: ['*'] }),
    secret: Type.Optional(WebhookSecret),
    enabled: Type.Optional(Type.Boolean({ default: true })),
  },
  { additionalProperties: false },
);
export type WebhookRequest = Static<typeof WebhookRequest>;

export const WebhookPatch = Type.Object(
  {
    url: Type.Optional(WebhookUrl),
    description: Type.Optional(Description),
    events: Type.Optional(Events),
    secret: Type.Optional(WebhookSecret),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type WebhookPatch = Static<typeof WebhookPatch>;

export const DeliveryState = Type.Union([
  Type.Literal('pending'),
  Type.Literal('delivering'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
]);
export type DeliveryState = Static<typeof DeliveryState>;

export const WebhookDelivery = Type.Object(
  {
    id: Uuid,
    webhook_id: Uuid,
    event_id: Type.String(),
    event_type: Type.String({ description: '`<resource_type>.<action>` of the event' }),
    state: DeliveryState,
    attempts: Type.Integer(),
    response_code: Type.Union([Type.Integer(), Type.Null()]),
    last_error: Type.Union([Type.String(), Type.Null()]),
    next_attempt_at: Type.Union([Timestamp, Type.Null()]),
    created_at: Timestamp,
    delivered_at: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type WebhookDelivery = Static<typeof WebhookDelivery>;

/** What a receiver gets as the body of a delivery. */
export const WebhookPayload = Type.Object(
  { delivery_id: Uuid, webhook_id: Uuid, event: Event },
  { additionalProperties: false },
);
export type WebhookPayload = Static<typeof WebhookPayload>;

export const ListDeliveriesQuery = Type.Object(
  { ...CursorQuery, state: Type.Optional(DeliveryState) },
  { additionalProperties: false },
);

export const webhookRoutes = {
  list: route({
    method: 'GET',
    path: '/v1/webhooks',
    operationId: 'listWebhooks',
    permission: 'webhook:read',
    summary: 'Webhooks, oldest first',
    tag: 'webhooks',
    auth: 'user',
    status: 200,
    query: Type.Object({ ...CursorQuery }, { additionalProperties: false }),
    response: Page(Webhook),
  }),
  create: route({
    method: 'POST',
    path: '/v1/webhooks',
    operationId: 'createWebhook',
    permission: 'webhook:write',
    summary:
      'Send events matching a filter to a URL: POSTs signed with HMAC-SHA256 (`Nqvm-Signature: t=<unix s>,v1=<hex of HMAC(secret, "<t>.<body>")>`), retried with backoff; the URL may not reach internal ranges (the URL import rules). The secret is shown once.',
    tag: 'webhooks',
    auth: 'user',
    status: 201,
    body: WebhookRequest,
    response: CreatedWebhook,
  }),
  get: route({
    method: 'GET',
    path: '/v1/webhooks/:id',
    operationId: 'getWebhook',
    permission: 'webhook:read',
    summary: 'One webhook',
    tag: 'webhooks',
    auth: 'user',
    status: 200,
    params: IdParams,
    response: Webhook,
  }),
  update: route({
    method: 'PATCH',
    path: '/v1/webhooks/:id',
    operationId: 'updateWebhook',
    permission: 'webhook:write',
    summary: 'Change a webhook: URL, filter, secret, enabled',
    tag: 'webhooks',
    auth: 'user',
    status: 200,
    params: IdParams,
    body: WebhookPatch,
    response: Webhook,
  }),
  delete: route({
    method: 'DELETE',
    path: '/v1/webhooks/:id',
    operationId: 'deleteWebhook',
    permission: 'webhook:write',
    summary: 'Delete a webhook and its deliveries',
    tag: 'webhooks',
    auth: 'user',
    status: 204,
    params: IdParams,
  }),
  deliveries: route({
    method: 'GET',
    path: '/v1/webhooks/:id/deliveries',
    operationId: 'listWebhookDeliveries',
    permission: 'webhook:read',
    summary: "A webhook's deliveries, newest first: state, attempts, last response code or error",
    tag: 'webhooks',
    auth: 'user',
    status: 200,
    params: IdParams,
    query: ListDeliveriesQuery,
    response: Page(WebhookDelivery),
  }),
};
