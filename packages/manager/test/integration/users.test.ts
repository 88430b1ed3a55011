import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const PASSWORD = 'a-long-enough-password';
const ENV = { NQVM_TOKEN_MAX_TTL: '30d', NQVM_SECRET_KEY: randomBytes(32).toString('base64') };

/**
 * Users managed by an admin, on two managers sharing one database: whatever one manager does to a user (disable,
 * delete, a changed password) is refused by the other on the very next request, since credentials are read from
 * the database at every authentication.
 */
describe.each(DB_KINDS)('users on %s', (kind) => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp(kind, ENV);
    b = await startTestApp(kind, ENV, a.database);
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const me = (t: TestApp, token: string) => t.app.inject({ method: 'GET', url: '/v1/auth/me', headers: bearer(token) });
  async function login(username: string, password = PASSWORD): Promise<string> {
    const res = await a.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { username, password } });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().token;
  }
  async function createUser(username: string, role: 'admin' | 'user' = 'user'): Promise<string> {
    const res = await a.request({ method: 'POST', url: '/v1/users', payload: { username, password: PASSWORD, role } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id;
  }
  async function mint(token: string, payload: Record<string, unknown>) {
    return a.app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(token), payload });
  }

  it('creates, lists, reads, changes and deletes users; bad input is a 400 or 409 naming the field', async () => {
    const short = await a.request({ method: 'POST', url: '/v1/users', payload: { username: 'x', password: 'short' } });
    expect(short.statusCode).toBe(400);
    expect(short.json()).toMatchObject({ field: 'body.password' });
    const badName = await a.request({
      method: 'POST',
      url: '/v1/users',
      payload: { username: ' x', password: PASSWORD },
    });
    expect(badName.statusCode).toBe(400);
    expect(badName.json()).toMatchObject({ field: 'body.username' });

    const id = await createUser('carol');
    const dup = await a.request({
      method: 'POST',
      url: '/v1/users',
      payload: { username: 'carol', password: PASSWORD },
    });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ code: 'user_exists', field: 'body.username' });

    const got = await b.request({ method: 'GET', url: `/v1/users/${id}` });
    expect(got.json()).toMatchObject({ id, username: 'carol', role: 'user', disabled: false, last_login_at: null });
    await login('carol');
    const list = await b.request({ method: 'GET', url: '/v1/users?limit=1' });
    expect(list.json().items).toHaveLength(1);
    expect(list.json().next_cursor).toBe('admin');
    const rest = await b.request({ method: 'GET', url: '/v1/users?cursor=admin' });
    const carol = rest.json().items.find((u: { id: string }) => u.id === id);
    expect(Date.parse(carol.last_login_at)).toBeGreaterThan(Date.now() - 60_000);

    const promoted = await a.request({ method: 'PATCH', url: `/v1/users/${id}`, payload: { role: 'admin' } });
    expect(promoted.json()).toMatchObject({ role: 'admin' });
    const empty = await a.request({ method: 'PATCH', url: `/v1/users/${id}`, payload: {} });
    expect(empty.statusCode).toBe(400);
    expect((await a.request({ method: 'DELETE', url: `/v1/users/${id}` })).statusCode).toBe(204);
    const gone = await b.request({ method: 'GET', url: `/v1/users/${id}` });
    expect(gone.statusCode).toBe(404);
    expect(gone.json()).toMatchObject({ code: 'user_not_found' });
    const ev = await a.request({ method: 'GET', url: `/v1/events?resource_type=user&resource_id=${id}` });
    expect(
      ev
        .json()
        .items.map((e: { action: string }) => e.action)
        .sort(),
    ).toEqual(['create', 'delete', 'update']);
    expect(JSON.stringify(ev.json())).not.toContain(PASSWORD);
  });

  it('a user is not an admin: no user routes, no hosts, and no token with more rights than its own', async () => {
    await createUser('dave');
    const session = await login('dave');
    for (const [method, url] of [
      ['GET', '/v1/users'],
      ['POST', '/v1/users'],
      ['GET', '/v1/hosts'],
    ] as const) {
      const res = await a.app.inject({
        method,
        url,
        headers: bearer(session),
        payload: method === 'POST' ? {} : undefined,
      });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
    }
    const escalate = await mint(session, { name: 'x', permissions: ['vm:read', 'user:read'] });
    expect(escalate.statusCode).toBe(403);
    expect(escalate.json()).toMatchObject({ code: 'forbidden', field: 'body.permissions' });

    // The cap: no expiry asked gets it; more than it is a 400 naming the field.
    const capped = await mint(session, { name: 'capped', permissions: ['vm:read', 'token:write'] });
    expect(capped.statusCode, capped.body).toBe(201);
    const days = (Date.parse(capped.json().expires_at) - Date.now()) / 86400_000;
    expect(days).toBeGreaterThan(29.9);
    expect(days).toBeLessThanOrEqual(30);
    const tooLong = await mint(session, { name: 'long', expires_in_days: 31 });
    expect(tooLong.statusCode).toBe(400);
    expect(tooLong.json()).toMatchObject({ code: 'token_ttl_too_long', field: 'body.expires_in_days' });

    // A token minting a token: not wider in scope, not longer-lived than itself.
    const scoped = capped.json().token as string;
    const wider = await mint(scoped, { name: 'wider', permissions: ['vm:read', 'vm:write'] });
    expect(wider.statusCode).toBe(403);
    expect(wider.json()).toMatchObject({ field: 'body.permissions' });
    const short = await mint(session, { name: 'short', expires_in_days: 2, permissions: ['vm:read', 'token:write'] });
    const child = await mint(short.json().token, { name: 'child', expires_in_days: 20 });
    expect(child.statusCode, child.body).toBe(201);
    expect(child.json().permissions.sort()).toEqual(['session', 'token:write', 'vm:read']);
    expect(Date.parse(child.json().expires_at)).toBeLessThanOrEqual(Date.parse(short.json().expires_at));
  });

  it('a changed password ends the other sessions of the user, keeps the own one and the tokens', async () => {
    await createUser('erin');
    const one = await login('erin');
    const two = await login('erin');
    const token = (await mint(one, { name: 'ci' })).json().token as string;
    const change = (token: string, payload: Record<string, unknown>) =>
      b.app.inject({ method: 'POST', url: '/v1/auth/password', headers: bearer(token), payload });
    const wrong = await change(one, { current_password: 'not-it', new_password: 'another-long-password' });
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json()).toMatchObject({ code: 'wrong_password', field: 'body.current_password' });
    const weak = await change(one, { current_password: PASSWORD, new_password: 'short' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ field: 'body.new_password' });
    expect((await me(a, two)).statusCode).toBe(200);

    const ok = await change(one, { current_password: PASSWORD, new_password: 'another-long-password' });
    expect(ok.statusCode, ok.body).toBe(200);
    expect((await me(a, one)).statusCode).toBe(200);
    expect((await me(a, two)).statusCode).toBe(401);
    expect((await me(a, token)).statusCode).toBe(200);
    const old = await a.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'erin', password: PASSWORD },
    });
    expect(old.statusCode).toBe(401);
    await login('erin', 'another-long-password');
  });

  it('disabling or deleting a user refuses their sessions and tokens on every manager at once', async () => {
    const id = await createUser('frank');
    const session = await login('frank');
    const token = (await mint(session, { name: 'ci' })).json().token as string;
    expect((await me(b, token)).statusCode).toBe(200);
    expect((await me(b, session)).statusCode).toBe(200);

    const off = await a.request({ method: 'PATCH', url: `/v1/users/${id}`, payload: { disabled: true } });
    expect(off.json()).toMatchObject({ disabled: true });
    expect((await me(b, token)).statusCode).toBe(401);
    expect((await me(b, session)).statusCode).toBe(401);
    expect((await me(a, token)).statusCode).toBe(401);
    const refused = await b.app.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { username: 'frank', password: PASSWORD },
    });
    expect(refused.statusCode).toBe(401);

    // Enabled again: tokens work again, the sessions ended with the disabling.
    await b.request({ method: 'PATCH', url: `/v1/users/${id}`, payload: { disabled: false } });
    expect((await me(a, token)).statusCode).toBe(200);
    expect((await me(a, session)).statusCode).toBe(401);
    const again = await login('frank');
    expect((await b.request({ method: 'DELETE', url: `/v1/users/${id}` })).statusCode).toBe(204);
    expect((await me(a, token)).statusCode).toBe(401);
    expect((await me(a, again)).statusCode).toBe(401);
  });

  it('the last active admin cannot be disabled, demoted or deleted; two parallel demotions leave one admin', async () => {
    const { id: admin } = (await me(a, a.token)).json();
    for (const [method, payload] of [
      ['PATCH', { disabled: true }],
      ['PATCH', { role: 'user' }],
      ['DELETE', undefined],
    ] as const) {
      const res = await a.request({ method, url: `/v1/users/${admin}`, payload });
      expect(res.statusCode, `${method} ${JSON.stringify(payload)}`).toBe(409);
      expect(res.json()).toMatchObject({ code: 'last_admin' });
    }
    // A disabled admin is no admin to fall back on.
    const other = await createUser('grace', 'admin');
    await a.request({ method: 'PATCH', url: `/v1/users/${other}`, payload: { disabled: true } });
    expect(
      (await a.request({ method: 'PATCH', url: `/v1/users/${admin}`, payload: { role: 'user' } })).statusCode,
    ).toBe(409);
    await a.request({ method: 'PATCH', url: `/v1/users/${other}`, payload: { disabled: false } });

    const results = await Promise.all([
      a.request({ method: 'PATCH', url: `/v1/users/${admin}`, payload: { role: 'user' } }),
      b.request({ method: 'PATCH', url: `/v1/users/${other}`, payload: { role: 'user' } }),
    ]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    const left = await a.database.withSession((s) =>
      s.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE role = 'admin' AND NOT disabled"),
    );
    expect(left[0]!.n).toBe(1);
  });

  it("records a token's last use at most once a minute", async () => {
    const created = (await a.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'touch' } })).json();
    const lastUsed = async () =>
      (await a.request({ method: 'GET', url: '/v1/tokens' }))
        .json()
        .items.find((t: { id: string }) => t.id === created.id).last_used_at as string | null;
    expect(await lastUsed()).toBeNull();
    await me(a, created.token);
    const first = await lastUsed();
    expect(first).not.toBeNull();
    await me(b, created.token);
    expect(await lastUsed()).toBe(first);
    await a.database.withSession((s) =>
      s.query("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1", [created.id]),
    );
    await me(b, created.token);
    expect(Date.parse((await lastUsed())!)).toBeGreaterThan(Date.parse(first!) - 1000);
  });
});
