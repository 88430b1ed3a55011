import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Database, openPostgres } from '../../src/db/client.ts';
import { startTestApp, type TestApp } from '../support/harness.ts';
import { createDatabase } from '../support/postgres.ts';

// An hour-long window: the counts below all fall into one window.
const LIMITS = {
  MANAGER_RECONCILER_DISABLED: 'true',
  // Managers sharing a database share the key its secrets are sealed with.
  NQVM_SECRET_KEY: randomBytes(32).toString('base64'),
  NQVM_RATE_LIMIT_WINDOW_S: '3600',
  NQVM_RATE_LIMIT_PER_TOKEN: '10',
  NQVM_RATE_LIMIT_PER_USER: '25',
  NQVM_RATE_LIMIT_PER_ADDRESS: '4',
};

function expectLimited(res: LightMyRequestResponse, limit: number): void {
  expect(res.statusCode, res.body).toBe(429);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as { code: string; retry_after_s: number; request_id: string };
  expect(body.code).toBe('too_many_requests');
  expect(body.request_id).toBe(res.headers['x-request-id']);
  const retry = Number(res.headers['retry-after']);
  expect(retry).toBeGreaterThan(0);
  expect(retry).toBeLessThanOrEqual(3600);
  expect(body.retry_after_s).toBe(retry);
  expect(res.headers['ratelimit-limit']).toBe(String(limit));
  expect(res.headers['ratelimit-remaining']).toBe('0');
  expect(res.headers['ratelimit-policy']).toBe(`${limit};w=3600`);
}

describe('API rate limits shared by two managers on one PostgreSQL', () => {
  let a: TestApp;
  let b: TestApp;
  let dbA: Database;
  let dbB: Database;

  beforeAll(async () => {
    const url = await createDatabase(inject('pgBaseUrl'));
    dbA = openPostgres(url);
    dbB = openPostgres(url);
    a = await startTestApp('postgres', LIMITS, dbA);
    b = await startTestApp('postgres', LIMITS, dbB);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await dbA?.close();
    await dbB?.close();
  });

  it('lets a token make its limit of requests over both managers together, then answers 429 on either', async () => {
    const made = await a.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'limited' } });
    expect(made.statusCode, made.body).toBe(201);
    const token = (made.json() as { token: string }).token;
    const me = (t: TestApp) =>
      t.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
    const answers = await Promise.all(Array.from({ length: 16 }, (_, i) => me(i % 2 ? a : b)));
    const ok = answers.filter((r) => r.statusCode === 200);
    expect(ok).toHaveLength(10);
    expect(answers.filter((r) => r.statusCode === 429)).toHaveLength(6);
    expect(new Set(ok.map((r) => r.headers['ratelimit-remaining']))).toEqual(
      new Set(Array.from({ length: 10 }, (_, i) => String(i))),
    );
    expectLimited(await me(a), 10);
    expectLimited(await me(b), 10);
  });

  it("counts a user's sessions together under the per-user limit, on both managers", async () => {
    // The admin's session made 1 request above (minting the token), its token 10 more; refused ones spend nothing.
    const used = 1 + 10;
    const answers = [];
    for (let i = 0; i < 25 - used; i++)
      answers.push(await (i % 2 ? a : b).request({ method: 'GET', url: '/v1/auth/me' }));
    expect(answers.map((r) => r.statusCode)).toEqual(Array(25 - used).fill(200));
    expect(answers.at(-1)?.headers['ratelimit-remaining']).toBe('0');
    expectLimited(await a.request({ method: 'GET', url: '/v1/vms' }), 25);
    expectLimited(await b.request({ method: 'GET', url: '/v1/vms' }), 25);
  });

  it('limits routes that need no credentials per source address; another address is not affected', async () => {
    const login = (t: TestApp, source: string) =>
      t.app.inject({
        method: 'POST',
        url: '/v1/auth/login',
        remoteAddress: source,
        payload: { username: 'nobody', password: 'wrong-password' },
      });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await login(i % 2 ? a : b, '198.51.100.9')).statusCode);
    expect(codes).toEqual([401, 401, 401, 401]);
    expectLimited(await login(a, '198.51.100.9'), 4);
    expectLimited(await login(b, '198.51.100.9'), 4);
    expect((await login(a, '198.51.100.10')).statusCode).toBe(401);
  });
});

describe('API rate limits on PGlite', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('pglite', LIMITS);
  });
  afterAll(async () => t?.close());

  it('counts a token in the embedded database and says what is left in the RateLimit headers', async () => {
    const made = await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'limited' } });
    const token = (made.json() as { token: string }).token;
    const me = () => t.app.inject({ method: 'GET', url: '/v1/auth/me', headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 10; i++) {
      const res = await me();
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-remaining']).toBe(String(9 - i));
    }
    expectLimited(await me(), 10);
  });
});
