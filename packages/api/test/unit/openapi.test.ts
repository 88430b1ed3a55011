import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { buildAsyncApi } from '../../src/asyncapi.ts';
import { buildOpenApi } from '../../src/openapi.ts';
import { allRoutes } from '../../src/routes.ts';
import { wsRoutes } from '../../src/ws.schema.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Doc = Record<string, unknown> & {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};
interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: unknown; example?: unknown }> }>;
  requestBody?: { content: Record<string, { schema: unknown; example?: unknown }> };
}

/** Every `$ref` string found anywhere in a document. */
function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refs(n, out);
  else if (node && typeof node === 'object')
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refs(v, out);
    }
  return out;
}

function resolves(doc: Record<string, unknown>, ref: string): boolean {
  let node: unknown = doc;
  for (const part of ref.replace(/^#\//, '').split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node !== undefined;
}

// Building both documents and compiling every schema is CPU work: a busy 2-core machine takes seconds.
describe('OpenAPI document', { timeout: 60_000 }, () => {
  it('matches the committed packages/api/openapi.json and asyncapi.json (run `npm run openapi` after changing the API)', () => {
    expect(readFileSync(join(root, 'openapi.json'), 'utf8')).toBe(`${JSON.stringify(buildOpenApi(), null, 2)}\n`);
    expect(readFileSync(join(root, 'asyncapi.json'), 'utf8')).toBe(`${JSON.stringify(buildAsyncApi(), null, 2)}\n`);
  });

  it('documents every route with a unique operationId and a problem+json error response', () => {
    const doc = buildOpenApi() as Doc;
    const ids = new Set<string>();
    for (const def of allRoutes()) {
      const op = doc.paths[def.path.replace(/:([a-z_]+)/g, '{$1}')]?.[def.method.toLowerCase()];
      expect(op, `${def.method} ${def.path}`).toBeDefined();
      expect(ids.has(op!.operationId)).toBe(false);
      ids.add(op!.operationId);
      expect(op!.responses['4XX']).toBeDefined();
    }
    expect((buildOpenApi() as { openapi: string }).openapi).toBe('3.1.0');
  });

  it('names its schemas: bodies and answers are $refs to components, and every $ref resolves', () => {
    const doc = buildOpenApi() as Doc;
    for (const name of ['Vm', 'Image', 'CreateVmRequest', 'VmState', 'Event', 'Snapshot', 'Template', 'Host'])
      expect(doc.components.schemas[name], name).toBeDefined();
    expect(doc.paths['/v1/vms']?.post?.requestBody?.content['application/json']?.schema).toEqual({
      $ref: '#/components/schemas/CreateVmRequest',
    });
    for (const r of refs(doc)) expect(resolves(doc, r), r).toBe(true);
    const async = buildAsyncApi();
    for (const r of refs(async)) expect(resolves(async, r), r).toBe(true);
  });

  it('gives every JSON body and answer an example that its schema accepts', () => {
    const doc = buildOpenApi() as Doc;
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
    const check = (where: string, m: { schema: unknown; example?: unknown } | undefined) => {
      if (!m) return;
      expect(m.example, `${where} has an example`).toBeDefined();
      const schema = JSON.parse(JSON.stringify(m.schema).replaceAll('"#/components/', '"doc#/components/'));
      if (!ajv.validate(schema as object, m.example)) failures.push(`${where}: ${ajv.errorsText()}`);
    };
    const failures: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(ops)) {
        check(`${method} ${path} body`, op.requestBody?.content['application/json']);
        for (const [status, r] of Object.entries(op.responses))
          if (status.startsWith('2')) check(`${method} ${path} ${status}`, r.content?.['application/json']);
        checked++;
      }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(60);
  });

  it('documents the WebSockets: a 101 answer in OpenAPI and their frames in AsyncAPI 3', () => {
    const doc = buildOpenApi() as Doc;
    const async = buildAsyncApi() as { asyncapi: string; channels: Record<string, { address: string }> };
    expect(async.asyncapi).toBe('3.0.0');
    for (const def of Object.values(wsRoutes)) {
      const op = doc.paths[def.path.replace(/:([a-z_]+)/g, '{$1}')]?.get;
      expect(op?.responses['101'], def.path).toBeDefined();
      expect(Object.values(async.channels).some((c) => c.address === def.path.replace(/:([a-z_]+)/g, '{$1}'))).toBe(
        true,
      );
    }
  });
});
