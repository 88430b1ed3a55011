import { describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../src/openapi.ts';
import { isUserPermission, ROLE_PERMISSIONS, USER_PERMISSIONS } from '../../src/permissions.ts';
import { allRoutes } from '../../src/routes.ts';
import { wsRoutes } from '../../src/ws.schema.ts';

const byAuth = { public: 'public', host: 'host-agent', guest: 'guest-agent' } as const;

describe('route permissions', () => {
  it('every route of the public API declares a permission that fits its credential kind', () => {
    for (const def of [...allRoutes(), ...Object.values(wsRoutes)]) {
      const what = `${def.operationId}: ${def.permission}`;
      expect(def.permission, what).toBeDefined();
      if (def.auth === 'user') expect(isUserPermission(def.permission!), what).toBe(true);
      else expect(def.permission, what).toBe(byAuth[def.auth]);
    }
  });

  it('the OpenAPI document shows each operation’s permission as x-permission', () => {
    const doc = buildOpenApi() as { paths: Record<string, Record<string, { operationId: string }>> };
    const declared = new Map<string, string | undefined>(
      [...allRoutes(), ...Object.values(wsRoutes)].map((d) => [d.operationId, d.permission]),
    );
    let n = 0;
    for (const ops of Object.values(doc.paths))
      for (const op of Object.values(ops)) {
        expect((op as Record<string, unknown>)['x-permission'], op.operationId).toBe(declared.get(op.operationId));
        n++;
      }
    expect(n).toBe(declared.size);
  });

  it('roles nest: viewer ⊂ operator ⊆ owner ⊂ admin, and only admin reaches hosts and the log', () => {
    const has = (r: keyof typeof ROLE_PERMISSIONS) => new Set(ROLE_PERMISSIONS[r]);
    for (const p of has('viewer')) expect(has('operator').has(p), p).toBe(true);
    for (const p of has('operator')) expect(has('owner').has(p), p).toBe(true);
    expect([...has('admin')].sort()).toEqual([...USER_PERMISSIONS].sort());
    for (const r of ['owner', 'operator', 'viewer'] as const)
      for (const p of ['host:read', 'host:write', 'log:read'] as const) expect(has(r).has(p), `${r} ${p}`).toBe(false);
    for (const p of ['vm:shell', 'mmds:read', 'vm:write'] as const) expect(has('viewer').has(p), p).toBe(false);
  });
});
