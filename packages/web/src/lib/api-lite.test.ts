import { api, wsRoutes } from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import { moduleText } from '../../api-lite.ts';

/** The browser's `@nqvm/api` (vite plugin), read back as the exports it defines. */
function liteExport(name: string): unknown {
  const line = moduleText()
    .split('\n')
    .find((l) => l.startsWith(`export const ${name} = `));
  const json = line?.match(/JSON\.parse\((".*")\);$/)?.[1];
  return json ? JSON.parse(JSON.parse(json) as string) : undefined;
}

function routes(table: object, prefix = ''): [string, { method: string; path: string }][] {
  return Object.entries(table).flatMap(([k, v]) => {
    if (v === null || typeof v !== 'object') return [];
    return typeof v.method === 'string' ? [[prefix + k, v]] : routes(v as object, `${prefix}${k}.`);
  });
}

describe("the console's route table without TypeBox", () => {
  it('has every route of the API with its method and path, and no schemas', () => {
    const lite = liteExport('api') as object;
    expect(routes(lite).map(([k, r]) => [k, r.method, r.path])).toEqual(
      routes(api).map(([k, r]) => [k, r.method, r.path]),
    );
    for (const [, r] of routes(lite)) expect(Object.keys(r)).not.toContain('response');
    expect(routes(liteExport('wsRoutes') as object).map(([, r]) => r.path)).toEqual(
      routes(wsRoutes).map(([, r]) => r.path),
    );
  });

  it('re-exports the client classes from their module and keeps constants as data', () => {
    expect(moduleText()).toMatch(/export \{ NqvmClient \} from ".*\/packages\/api\/src\/client\.ts";/);
    expect(liteExport('VM_STATES')).toContain('running');
  });
});
