import { allRoutes } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

describe.each(DB_KINDS)('auth and tokens on %s', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => t.close());

  it('logs in with the configured admin password, sets an HttpOnly cookie, and answers /me', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'admin', password: ADMIN_PASSWORD },
    });
    expect(res.statusCode).toBe(200);
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/nqvm_session=nqs_/);
    expect(cookie).toMatch(/HttpOnly/);
    const me = await t.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { cookie: cookie.split(';')[0]! } });
    expect(me.json()).toMatchObject({ username: 'admin', role: 'admin', auth: 'session' });
  });

  it('refuses a wrong password with 401 problem+json and records the failure', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'admin', password: 'wrong-password' },
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'unauthorized', status: 401 });
    expect(res.json().request_id).toBeTruthy();
    const ev = await t.request({ method: 'GET', url: '/v1/events?resource_type=session&result=error' });
    expect(ev.json().items[0]).toMatchObject({ action: 'login', result: 'error' });
    expect(JSON.stringify(ev.json())).not.toContain('wrong-password');
  });

  it('rate-limits repeated failed logins from one client with 429 and Retry-After', async () => {
    let last = 0;
    let retryAfter: string | undefined;
    for (let i = 0; i < 12; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        remoteAddress: '10.9.9.9',
        payload: { username: 'nobody', password: `guess-${i}` },
      });
      last = res.statusCode;
      retryAfter = res.headers['retry-after'] as string | undefined;
    }
    expect(last).toBe(429);
    expect(Number(retryAfter)).toBeGreaterThan(0);
  });

  it('requires credentials on every /v1 route except login and host registration', async () => {
    for (const def of allRoutes()) {
      if (def.auth === 'public') continue;
      const url = def.path.replace(/:([a-z_]+)/g, '00000000-0000-4000-8000-000000000000');
      const res = await t.app.inject({ method: def.method, url, payload: def.body ? {} : undefined });
      expect(res.statusCode, `${def.method} ${def.path}`).toBe(401);
    }
    const ws = await t.app.inject({ method: 'GET', url: '/v1/events/ws' });
    expect(ws.statusCode).toBe(401);
  });

  it('creates an API token shown once, stores only its hash, and revoking it makes it fail', async () => {
    const created = await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci' } });
    expect(created.statusCode).toBe(201);
    const { token, id, prefix } = created.json();
    expect(token).toMatch(/^nqt_/);
    expect(token.startsWith(prefix)).toBe(true);
    const rows = await t.database.withSession((s) =>
      s.query<{ token_hash: string }>('SELECT token_hash FROM api_tokens'),
    );
    expect(rows.some((r) => r.token_hash.includes(token))).toBe(false);
    const list = await t.request({ method: 'GET', url: '/v1/tokens' });
    expect(JSON.stringify(list.json())).not.toContain(token);
    const me = await t.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.json()).toMatchObject({ username: 'admin', auth: 'token' });
    expect((await t.request({ method: 'DELETE', url: `/v1/tokens/${id}` })).statusCode).toBe(204);
    const after = await t.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(after.statusCode).toBe(401);
  });

  it('an expired token is refused', async () => {
    const created = await t.request({
      method: 'POST',
      url: '/v1/tokens',
      payload: { name: 'short', expires_in_days: 1 },
    });
    const { token, id } = created.json();
    await t.database.withSession((s) =>
      s.query("UPDATE api_tokens SET expires_at = now() - interval '1 minute' WHERE id = $1", [id]),
    );
    const res = await t.app.inject({
      method: 'GET',
      url: '/v1/auth/me',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.statusCode).toBe(401);
  });

  it('logout ends the session', async () => {
    const login = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'admin', password: ADMIN_PASSWORD },
    });
    const token = login.json().token as string;
    const auth = { authorization: `Bearer ${token}` };
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/logout', headers: auth })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/auth/me', headers: auth })).statusCode).toBe(401);
  });

  it('bad input gets a 400 naming the field: unknown, missing, wrong type, oversized', async () => {
    const unknown = await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'x', admin: true } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json()).toMatchObject({ code: 'validation_failed', field: 'body.admin' });
    const missing = await t.request({ method: 'POST', url: '/v1/tokens', payload: {} });
    expect(missing.json()).toMatchObject({ field: 'body.name' });
    const wrongType = await t.request({
      method: 'POST',
      url: '/v1/tokens',
      payload: { name: 'x', expires_in_days: 'soon' },
    });
    expect(wrongType.json()).toMatchObject({ field: 'body.expires_in_days' });
    const big = await t.request({
      method: 'POST',
      url: '/v1/tokens',
      payload: { name: 'x'.repeat(2 * 1024 * 1024) },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ code: 'body_too_large' });
    const badJson = await t.request({
      method: 'POST',
      url: '/v1/tokens',
      headers: { 'content-type': 'application/json' },
      payload: '{"name":',
    });
    expect(badJson.statusCode).toBe(400);
    expect(badJson.json().code).toBe('invalid_json');
    const badId = await t.request({ method: 'DELETE', url: '/v1/tokens/not-a-uuid' });
    expect(badId.statusCode).toBe(400);
    expect(badId.json()).toMatchObject({ field: 'params.id' });
    const tokens = await t.request({ method: 'GET', url: '/v1/tokens' });
    expect(tokens.json().items.map((x: { name: string }) => x.name)).not.toContain('x');
  });
});
