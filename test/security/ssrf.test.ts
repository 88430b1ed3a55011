import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UrlGuard } from '../../packages/manager/src/security/url-guard.ts';
import { startTestApp, type TestApp } from '../../packages/manager/test/support/harness.ts';
import { expectProblem } from './support.ts';

/**
 * URL imports may not reach the manager itself, the guest network's gateway, cloud metadata or any other
 * internal address, directly, through a name, or through a redirect from an allowed server.
 */
describe('SSRF: URL imports refuse internal addresses', () => {
  let t: TestApp;
  let inner: Server;
  let outer: Server;
  let innerPort = 0;
  let outerBase = '';
  const hits: string[] = [];

  beforeAll(async () => {
    // A secret-bearing service on loopback (what the manager's own /health stood for in the report).
    inner = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('internal secret');
    });
    await new Promise<void>((r) => inner.listen(0, '127.0.0.1', r));
    innerPort = (inner.address() as AddressInfo).port;
    // An "outside" server the operator allowed (127.0.0.2/32), which redirects to internal addresses.
    outer = createServer((req, res) => {
      const to = new URL(req.url ?? '/', 'http://x').searchParams.get('to');
      if (to) return void res.writeHead(302, { location: to }).end();
      res.end('public bytes');
    });
    await new Promise<void>((r) => outer.listen(0, '127.0.0.2', r));
    outerBase = `http://127.0.0.2:${(outer.address() as AddressInfo).port}`;
    t = await startTestApp('pglite', { NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.2/32' });
  });
  afterAll(async () => {
    await t?.close();
    for (const s of [inner, outer]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  const importUrl = (url: string, name = `img-${Math.random().toString(36).slice(2, 8)}`) =>
    t.request({ method: 'POST', url: '/v1/images', payload: { name, kind: 'rootfs', source: { type: 'url', url } } });

  const internal = () => [
    `http://127.0.0.1:${innerPort}/health`,
    `http://localhost:${innerPort}/health`,
    `http://[::1]:${innerPort}/`,
    `http://[::ffff:127.0.0.1]:${innerPort}/`,
    `http://0.0.0.0:${innerPort}/`,
    `http://2130706433:${innerPort}/`,
    'http://10.88.0.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://192.168.1.1/',
    'http://172.16.0.1/',
    'http://[fe80::1]/',
    'http://[fd00::1]/',
    'http://[64:ff9b::a9fe:a9fe]/',
  ];

  it('answers 400 url_not_allowed for loopback, the bridge gateway, metadata and private ranges', async () => {
    for (const url of internal()) {
      const res = await importUrl(url);
      expectProblem(res, url);
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
      expect(res.json(), url).toMatchObject({ code: 'url_not_allowed', field: 'body.source.url' });
    }
    expect(hits).toEqual([]);
    const images = await t.request({ method: 'GET', url: '/v1/images' });
    expect(images.json().items).toEqual([]);
  });

  it('answers 400 for a redirect from an allowed server to an internal address, and fetches nothing there', async () => {
    for (const to of [`http://127.0.0.1:${innerPort}/health`, 'http://169.254.169.254/', 'http://10.88.0.1/']) {
      const res = await importUrl(`${outerBase}/r?to=${encodeURIComponent(to)}`);
      expectProblem(res, to);
      expect(res.statusCode, `${to}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ code: 'url_not_allowed', field: 'body.source.url' });
    }
    expect(hits).toEqual([]);
  });

  it('imports from an allowed address (the guard is not refusing everything)', async () => {
    const res = await importUrl(`${outerBase}/file.img`, 'allowed');
    expect(res.statusCode, res.body).toBe(202);
  });

  it('refuses a name that resolves to an internal address, checking every address it has', async () => {
    const guard = new UrlGuard({
      allow: [],
      lookup: ((_host: string, _opts: unknown, cb: (e: null, a: { address: string; family: number }[]) => void) =>
        cb(null, [
          { address: '93.184.215.14', family: 4 },
          { address: '169.254.169.254', family: 4 },
        ])) as never,
    });
    await expect(guard.check(new URL('http://rebind.example/'), 'body.source.url')).rejects.toMatchObject({
      code: 'url_not_allowed',
    });
    expect(guard.permits('93.184.215.14')).toBe(true);
    expect(guard.permits('::ffff:169.254.169.254')).toBe(false);
  });
});
