import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import * as full from '../api/src/index.ts';

/**
 * The console's `@nqvm/api` in the browser bundle: the same route table, constants and schemas, without the
 * TypeBox builders that made them. Routes keep only what the typed client sends by (method, path, flags); data
 * and schemas are their JSON (TypeBox schemas are plain JSON Schema, checked the same way by `typebox/value`);
 * classes and functions come from the module that defines them. Types still come from `@nqvm/api` itself, so the
 * type check covers every call. Without this the whole route table with its TypeBox schemas was in the first
 * page's JS (about 30 KiB gzipped).
 */
const ID = '\0nqvm-api-lite';
const SOURCE = fileURLToPath(new URL('../api/src/', import.meta.url));
/** Where each function a browser may import is defined (a function missing here fails the build by name). */
const FUNCTIONS: Record<string, string> = {
  ApiError: 'client.ts',
  NqvmClient: 'client.ts',
  buildPath: 'client.ts',
  buildQuery: 'client.ts',
  formatLogLine: 'log-format.ts',
};
const ROUTE_FIELDS = ['method', 'path', 'operationId', 'tag', 'auth', 'status', 'rawBody', 'rawResponse', 'websocket'];

function isRoute(v: object): v is Record<string, unknown> {
  return typeof (v as { method?: unknown }).method === 'string' && typeof (v as { path?: unknown }).path === 'string';
}

/** A route keeps its transport fields; a group of routes is stripped route by route. */
function strip(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
  if (isRoute(v)) return Object.fromEntries(ROUTE_FIELDS.filter((k) => v[k] !== undefined).map((k) => [k, v[k]]));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x)]));
}

export function moduleText(): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(full)) {
    if (typeof value === 'function') {
      const file = FUNCTIONS[name];
      if (file) lines.push(`export { ${name} } from ${JSON.stringify(SOURCE + file)};`);
    } else
      lines.push(`export const ${name} = /* @__PURE__ */ JSON.parse(${JSON.stringify(JSON.stringify(strip(value)))});`);
  }
  return lines.join('\n');
}

export function apiLite(): Plugin {
  return {
    name: 'nqvm-api-lite',
    enforce: 'pre',
    apply: 'build',
    resolveId(id, importer) {
      return id === '@nqvm/api' && importer?.includes('/packages/web/src/') ? ID : null;
    },
    load(id) {
      return id === ID ? moduleText() : null;
    },
  };
}
