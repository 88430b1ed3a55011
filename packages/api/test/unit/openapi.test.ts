import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../src/openapi.ts';
import { allRoutes } from '../../src/routes.ts';

const committed = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi.json');

describe('OpenAPI document', () => {
  it('matches the committed packages/api/openapi.json (run `npm run openapi` after changing the API)', () => {
    const current = `${JSON.stringify(buildOpenApi(), null, 2)}\n`;
    expect(readFileSync(committed, 'utf8')).toBe(current);
  });

  it('documents every route with a unique operationId and a problem+json error response', () => {
    const doc = buildOpenApi() as {
      paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
    };
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
});
