import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostJoinTokens } from '../../packages/manager/src/db/schema.ts';
import { startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';
import { expectProblem } from './support.ts';

describe('host join tokens expire, join one host once, and are shown only when made', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite', { MANAGER_RECONCILER_DISABLED: 'true' });
  });
  afterAll(async () => t?.close());

  const register = (join_token: string, name: string) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token, name, addr: 'http://127.0.0.1:9' },
    });
  const create = (payload: Record<string, unknown> = {}) =>
    t.request({ method: 'POST', url: '/v1/join-tokens', payload });

  it('needs a user credential to make or list them', async () => {
    for (const [method, url] of [
      ['POST', '/v1/join-tokens'],
      ['GET', '/v1/join-tokens'],
    ] as const) {
      const res = await t.app.inject({ method, url, ...(method === 'POST' ? { payload: {} } : {}) });
      expectProblem(res, `${method} ${url}`);
      expect(res.statusCode).toBe(401);
    }
  });

  it('joins one host; the same token again is refused with join_token_used', async () => {
    const made = await create({ description: 'rack 4', ttl_s: 600 });
    expect(made.statusCode).toBe(201);
    const tok = made.json() as { id: string; token: string; state: string; expires_at: string };
    expect(tok.token).toMatch(/^nqj_/);
    expect(tok.state).toBe('valid');
    const ttl = Date.parse(tok.expires_at) - Date.now();
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);

    const first = await register(tok.token, 'joined-1');
    expect(first.statusCode).toBe(201);
    const again = await register(tok.token, 'joined-2');
    expectProblem(again, 'used token');
    expect(again.statusCode).toBe(401);
    expect(again.json()).toMatchObject({ code: 'join_token_used', field: 'body.join_token' });

    const list = (await t.request({ method: 'GET', url: '/v1/join-tokens' })).json() as {
      items: Record<string, unknown>[];
    };
    const row = list.items.find((i) => i.id === tok.id);
    expect(row).toMatchObject({ state: 'used', host_id: first.json().id, description: 'rack 4' });
    expect(JSON.stringify(list)).not.toContain(tok.token);
    const stored = await t.database.db.select().from(hostJoinTokens).where(eq(hostJoinTokens.id, tok.id));
    expect(JSON.stringify(stored)).not.toContain(tok.token);
  });

  it('refuses an expired token with join_token_expired and an unknown one with invalid_join_token', async () => {
    const tok = (await create()).json() as { id: string; token: string };
    await t.database.db
      .update(hostJoinTokens)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(eq(hostJoinTokens.id, tok.id));
    const expired = await register(tok.token, 'late');
    expectProblem(expired, 'expired token');
    expect(expired.statusCode).toBe(401);
    expect(expired.json()).toMatchObject({ code: 'join_token_expired', field: 'body.join_token' });
    const listed = (await t.request({ method: 'GET', url: '/v1/join-tokens' })).json().items as { id: string }[];
    expect(listed.find((i) => i.id === tok.id)).toMatchObject({ state: 'expired' });

    const unknown = await register('nqj_not-a-token', 'nobody');
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json()).toMatchObject({ code: 'invalid_join_token' });
  });

  it('is not spent by a registration that fails, and joins exactly one of two racing agents', async () => {
    const tok = (await create()).json() as { token: string };
    expect((await register(tok.token, 'taken')).statusCode).toBe(201);
    const second = (await create()).json() as { token: string };
    const refused = await register(second.token, 'taken');
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'host_exists' });
    expect((await register(second.token, 'free')).statusCode).toBe(201);

    const raced = (await create()).json() as { token: string };
    const results = await Promise.all(['race-a', 'race-b', 'race-c'].map((n) => register(raced.token, n)));
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, 401, 401]);
  });

  it('refuses bad lifetimes with 400 and revokes a token on delete', async () => {
    for (const ttl_s of [0, 59, 7 * 24 * 3600 + 1, 'x']) {
      const res = await create({ ttl_s });
      expectProblem(res, `ttl ${ttl_s}`);
      expect(res.statusCode).toBe(400);
    }
    const tok = (await create()).json() as { id: string; token: string };
    expect((await t.request({ method: 'DELETE', url: `/v1/join-tokens/${tok.id}` })).statusCode).toBe(204);
    expect((await t.request({ method: 'DELETE', url: `/v1/join-tokens/${tok.id}` })).statusCode).toBe(404);
    expect((await register(tok.token, 'revoked')).json()).toMatchObject({ code: 'invalid_join_token' });
  });
});
