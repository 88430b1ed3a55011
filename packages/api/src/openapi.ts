import type { TSchema } from 'typebox';
import { Problem } from './common.schema.ts';
import type { RouteDef } from './route.ts';
import { allRoutes } from './routes.ts';

export const API_VERSION = '0.1.0';

type JsonObject = Record<string, unknown>;

function plain(schema: TSchema): JsonObject {
  // TypeBox schemas carry symbol keys; a JSON round trip leaves only the JSON Schema.
  return JSON.parse(JSON.stringify(schema)) as JsonObject;
}

function parameters(def: RouteDef): JsonObject[] {
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
        schema: rest,
      });
    }
  }
  return out;
}

function operation(def: RouteDef): JsonObject {
  const problem = { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } };
  const success: JsonObject = { description: 'Success' };
  if (def.rawResponse)
    success.content = { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } };
  else if (def.response) success.content = { 'application/json': { schema: plain(def.response) } };
  const op: JsonObject = {
    operationId: def.operationId,
    summary: def.summary,
    tags: [def.tag],
    parameters: parameters(def),
    responses: {
      [String(def.status)]: success,
      '4XX': { description: 'Client error', content: problem },
      '5XX': { description: 'Server error', content: problem },
    },
  };
  if (def.body) op.requestBody = { required: true, content: { 'application/json': { schema: plain(def.body) } } };
  if (def.rawBody)
    op.requestBody = {
      required: true,
      content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
    };
  if (def.auth === 'public') op.security = [];
  if (def.auth === 'host' || def.auth === 'guest') op.security = [{ hostSecret: [] }];
  return op;
}

/** The OpenAPI 3.1 document of the public API, generated from the route table. */
export function buildOpenApi(): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const def of allRoutes()) {
    const p = def.path.replace(/:([a-zA-Z_]+)/g, '{$1}');
    paths[p] ??= {};
    paths[p][def.method.toLowerCase()] = operation(def);
  }
  const { $id: _id, ...problem } = plain(Problem);
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
      schemas: { Problem: problem },
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'A session or API token' },
        session: { type: 'apiKey', in: 'cookie', name: 'nqvm_session' },
        hostSecret: { type: 'http', scheme: 'bearer', description: 'Per-host secret (agents)' },
      },
    },
  };
}
