import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';
import { expectProblem } from './support.ts';

/** Fastify's own refusals, browser-facing headers, WebSocket origins and /metrics. */
describe('the HTTP surface a browser or scanner sees', () => {
  let t: TestApp;
  let base = '';
  beforeAll(async () => {
    t = await startTestApp('pglite', { NQVM_ALLOWED_ORIGINS: 'https://console.example:8443' });
    base = await t.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => t?.close());

  it('answers 404, 405, 413, 415, over-long params, bad encoding and malformed JSON as problem+json', async () => {
    const cases: [string, Parameters<TestApp['request']>[0], number, string][] = [
      ['unknown route', { method: 'GET', url: '/v1/nothing-here' }, 404, 'route_not_found'],
      ['wrong method', { method: 'PUT', url: '/v1/vms' }, 405, 'method_not_allowed'],
      [
        'body over 1 MiB',
        {
          method: 'POST',
          url: '/v1/tokens',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ name: 'x'.repeat(1_100_000) }),
        },
        413,
        'body_too_large',
      ],
      [
        'an XML body',
        { method: 'POST', url: '/v1/tokens', headers: { 'content-type': 'application/xml' }, payload: '<x/>' },
        415,
        'unsupported_media_type',
      ],
      ['bad percent-encoding', { method: 'GET', url: '/v1/vms/%E0%A4%A' }, 400, 'invalid_url_encoding'],
      [
        'malformed JSON',
        { method: 'POST', url: '/v1/tokens', headers: { 'content-type': 'application/json' }, payload: '{"name":' },
        400,
        'invalid_json',
      ],
    ];
    for (const [what, req, status, code] of cases) {
      const res = await t.request(req);
      expectProblem(res, what);
      expect(res.statusCode, `${what}: ${res.body.slice(0, 200)}`).toBe(status);
      expect(res.json().code, what).toBe(code);
    }
    // A path parameter over the router's 200 characters matches no route (find-my-way), so it is a 404 too.
    const long = await t.request({ method: 'GET', url: `/v1/vms/${'a'.repeat(300)}` });
    expectProblem(long, 'over-long path parameter');
    expect([404, 414]).toContain(long.statusCode);
    const wrong = await t.request({ method: 'PUT', url: '/v1/vms' });
    expect(wrong.headers.allow).toMatch(/GET/);
  });

  it('sends a CSP that forbids framing, nosniff and no-referrer on the console and the API', async () => {
    for (const url of ['/', '/vms/123', '/v1/vms', '/health']) {
      const res = await t.request({ method: 'GET', url });
      const csp = String(res.headers['content-security-policy']);
      expect(csp, url).toContain("frame-ancestors 'none'");
      expect(csp, url).toContain("default-src 'self'");
      expect(csp, url).toContain("script-src 'self'");
      expect(res.headers['x-content-type-options'], url).toBe('nosniff');
      expect(res.headers['x-frame-options'], url).toBe('DENY');
      expect(res.headers['referrer-policy'], url).toBe('no-referrer');
    }
  });

  const upgrade = (origin: string | undefined) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/events/ws`, {
        headers: { authorization: `Bearer ${t.token}`, ...(origin ? { origin } : {}) },
      });
      ws.on('open', () => {
        ws.close();
        resolve(101);
      });
      ws.on('unexpected-response', (req, res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
        res.destroy();
      });
      ws.on('error', (err) => {
        if (!/Unexpected server response/.test(err.message)) reject(err);
      });
    });

  it("refuses a WebSocket upgrade from another origin, even with the user's credentials", async () => {
    expect(await upgrade('http://127.0.0.1:9999')).toBe(403);
    expect(await upgrade('null')).toBe(403);
    expect(await upgrade('http://evil.example')).toBe(403);
    expect(await upgrade(base)).toBe(101);
    expect(await upgrade('https://console.example:8443')).toBe(101);
    expect(await upgrade(undefined)).toBe(101);
  });

  it('serves /metrics only with a user token unless NQVM_METRICS_PUBLIC=true', async () => {
    const anonymous = await t.app.inject({ method: 'GET', url: '/metrics' });
    expectProblem(anonymous, '/metrics');
    expect(anonymous.statusCode).toBe(401);
    const authed = await t.request({ method: 'GET', url: '/metrics' });
    expect(authed.statusCode).toBe(200);
    expect(authed.body).toContain('# TYPE');

    const open = await startTestApp('pglite', { NQVM_METRICS_PUBLIC: 'true' });
    try {
      expect((await open.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('answers a raw request with a malformed path over the socket without a 5xx', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/v1/vms/%ff`, { method: 'GET' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBeLessThan(500);
  });
});
