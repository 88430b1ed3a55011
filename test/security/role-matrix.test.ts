import { allRoutes, ROLE_PERMISSIONS, type UserPermission, wsRoutes } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS } from '../../packages/manager/test/support/harness.ts';
import { expectProblem, startTarget, type Target, urlOf } from './support.ts';

/**
 * The route table against scoped tokens: every user route (HTTP and WebSocket) called with a token scoped to the
 * viewer role's permissions and with one holding only `vm:read` answers 403 forbidden exactly when the route's
 * declared permission is outside the scope, and never 403 (nor 5xx) when it is inside.
 */
describe.each(DB_KINDS)('permission matrix over the route table (%s)', (kind) => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({}, kind);
  });
  afterAll(async () => target?.close());

  async function mint(permissions?: UserPermission[], bearer?: string) {
    const res = await target.t.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { authorization: `Bearer ${bearer ?? target.t.token}` },
      payload: { name: `scoped-${Math.random()}`, ...(permissions ? { permissions } : {}) },
    });
    return res;
  }

  const userRoutes = () => [
    ...allRoutes().filter((d) => d.auth === 'user'),
    ...Object.values(wsRoutes).map((d) => ({ ...d, method: 'GET' as const, body: undefined, rawBody: false })),
  ];

  for (const [name, scope] of [
    ['the viewer role', ROLE_PERMISSIONS.viewer],
    ['vm:read alone', ['vm:read']],
  ] as [string, readonly UserPermission[]][]) {
    it(`answers 403 exactly outside the scope of a token holding ${name}`, async () => {
      const created = await mint([...scope]);
      expect(created.statusCode, created.body).toBe(201);
      const token = created.json().token as string;
      const held = new Set<string>([...scope, 'session']);
      let refused = 0;
      let passed = 0;
      for (const def of userRoutes()) {
        const res = await target.t.app.inject({
          method: def.method,
          url: urlOf(target, def),
          headers: {
            authorization: `Bearer ${token}`,
            ...(def.rawBody ? { 'content-type': 'application/octet-stream' } : {}),
          },
          ...(def.body ? { payload: {} } : def.rawBody ? { payload: Buffer.from('x') } : {}),
        });
        const what = `${def.method} ${def.path} (${def.permission}) with ${name}: ${res.statusCode} ${res.body.slice(0, 200)}`;
        expectProblem(res, what);
        if (held.has(def.permission!)) {
          expect(res.statusCode, what).not.toBe(403);
          passed++;
        } else {
          expect(res.statusCode, what).toBe(403);
          expect(res.json(), what).toMatchObject({ code: 'forbidden' });
          refused++;
        }
      }
      expect(refused).toBeGreaterThan(10);
      expect(passed).toBeGreaterThan(2);
    });
  }

  it('a token never mints one with more rights than its own; without a scope it passes its own on', async () => {
    const viewer = (await mint([...ROLE_PERMISSIONS.viewer])).json().token as string;
    const wider = await mint(['vm:read', 'vm:write'], viewer);
    expectProblem(wider, 'minting vm:write from a viewer token');
    expect(wider.statusCode).toBe(403);
    expect(wider.json()).toMatchObject({ code: 'forbidden', field: 'body.permissions' });

    const narrower = await mint(['vm:read'], viewer);
    expect(narrower.statusCode, narrower.body).toBe(201);
    expect(narrower.json().permissions).toEqual(['vm:read']);

    const inherited = await mint(undefined, viewer);
    expect(inherited.statusCode, inherited.body).toBe(201);
    expect([...inherited.json().permissions].sort()).toEqual([...ROLE_PERMISSIONS.viewer].sort());
    const me = await target.t.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { authorization: `Bearer ${inherited.json().token}` },
    });
    expect([...me.json().permissions].sort()).toEqual([...ROLE_PERMISSIONS.viewer].sort());
    const hosts = await target.t.app.inject({
      method: 'GET',
      url: '/v1/hosts',
      headers: { authorization: `Bearer ${inherited.json().token}` },
    });
    expect(hosts.statusCode).toBe(403);

    const list = await target.t.request({ method: 'GET', url: '/v1/tokens' });
    const row = list.json().items.find((t: { id: string }) => t.id === inherited.json().id);
    expect(row.permissions).not.toBeNull();
    expect(row.last_used_at).not.toBeNull();
  });
});
