import type { TSchema } from 'typebox';
import { Problem } from './common.schema.ts';
import { exampleOf } from './examples.ts';
import * as exported from './index.ts';
import { Components, type JsonObject, plain } from './openapi-components.ts';
import { bodyRequired, type RouteDef } from './route.ts';
import { allRoutes } from './routes.ts';
import { type WsRouteDef, wsRoutes } from './ws.schema.ts';

export const API_VERSION = '0.1.0';

function parameters(def: { params?: TSchema; query?: TSchema }, components: Components): JsonObject[] {
  const out: JsonObject[] = [];
  for (const [where, schema] of [
    ['path', def.params],
    ['query', def.query],
  ] as const) {
    if (!schema) continue;
    const obj = plain(schema) as { properties?: Record<string, JsonObject>; required?: string[] };
    for (const [name, prop] of Object.entries(obj.properties ?? {})) {
      const { description, ...rest } = prop;
      out.push({
        name,
        in: where,
        required: where === 'path' || (obj.required ?? []).includes(name),
        ...(description ? { description } : {}),
        schema: components.ref(rest),
      });
    }
  }
  return out;
}

/** A media type object: the schema, named parts as `$ref`s, and an example that satisfies it. */
function media(schema: TSchema, components: Components): JsonObject {
  return { schema: components.ref(schema), example: exampleOf(plain(schema)) };
}

const problem = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };

function operation(def: RouteDef, components: Components): JsonObject {
  const success: JsonObject = { description: 'Success' };
  if (def.rawResponse)
    success.content = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };
  else if (def.response) success.content = { 'application/json': media(def.response, components) };
  const op: JsonObject = {
    operationId: def.operationId,
    summary: def.summary,
    tags: [def.tag],
    parameters: parameters(def, components),
    responses: {
      [String(def.status)]: success,
      '4XX': { description: 'Client error', content: problem },
      '5XX': { description: 'Server error', content: problem },
    },
  };
  if (def.body)
    op.requestBody = {
      required: bodyRequired(def.body),
      content: { 'application/json': media(def.body, components) },
    };
  if (def.rawBody)
    op.requestBody = {
      required: true,
      content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
    };
  if (def.permission) op['x-permission'] = def.permission;
  if (def.auth === 'public') op.security = [];
  if (def.auth === 'host' || def.auth === 'guest') op.security = [{ hostSecret: [] }];
  return op;
}

/** A WebSocket as an OpenAPI GET answering 101; its frames are in `x-messages` and the AsyncAPI document. */
function wsOperation(def: WsRouteDef, components: Components): JsonObject {
  const frames = (which: Record<string, TSchema>) =>
    Object.fromEntries(Object.entries(which).map(([name, s]) => [name, components.ref(s, name)]));
  return {
    operationId: def.operationId,
    summary: `WebSocket: ${def.summary}`,
    description:
      'Upgrade with `GET` (`Connection: Upgrade`, `Upgrade: websocket`), authenticated like every route. The frames ' +
      'each way are listed in `x-messages` and in the AsyncAPI document (`/v1/asyncapi.json`).',
    tags: [def.tag],
    parameters: parameters(def, components),
    responses: {
      '101': { description: 'Switching Protocols: the WebSocket is open' },
      '4XX': { description: 'Refused before the upgrade', content: problem },
    },
    'x-permission': def.permission,
    'x-websocket': true,
    'x-messages': { server: frames(def.receive), client: frames(def.send) },
  };
}

/** The OpenAPI 3.1 document of the public API, generated from the route table. */
export function buildOpenApi(): JsonObject {
  const components = new Components(exported);
  const paths: Record<string, JsonObject> = {};
  for (const def of allRoutes()) {
    const p = def.path.replace(/:([a-zA-Z_]+)/g, '{$1}');
    paths[p] ??= {};
    paths[p][def.method.toLowerCase()] = operation(def, components);
  }
  for (const def of Object.values(wsRoutes) as WsRouteDef[]) {
    const p = def.path.replace(/:([a-zA-Z_]+)/g, '{$1}');
    paths[p] ??= {};
    paths[p].get = wsOperation(def, components);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'nqvm API',
      version: API_VERSION,
      description: 'Run and manage microVMs on your own Linux hosts.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }, { session: [] }],
    paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
    components: {
      schemas: { ...components.definitions(), Problem: plain(Problem) },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A session or API token' },
        session: { type: 'apiKey', in: 'cookie', name: 'nqvm_session' },
        hostSecret: { type: 'http', scheme: 'bearer', description: 'Per-host secret (agents)' },
      },
    },
  };
}
