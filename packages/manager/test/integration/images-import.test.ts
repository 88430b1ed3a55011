import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => d.name);
}

describe.each(DB_KINDS)('image URL import and upload streaming on %s', (kind) => {
  let t: TestApp;
  let origin: Server;
  let base: string;
  const payload = randomBytes(4 * MiB);
  let release: () => void = () => {};
  let gate = Promise.resolve();

  beforeAll(async () => {
    origin = createServer((req, res) => {
      switch (req.url) {
        case '/slow.img':
          res.writeHead(200, { 'content-length': payload.length });
          res.write(payload.subarray(0, MiB));
          void gate.then(() => res.end(payload.subarray(MiB)));
          return;
        case '/file.img':
          res.writeHead(200, { 'content-length': payload.length });
          res.end(payload);
          return;
        case '/abort.img':
          res.writeHead(200, { 'content-length': payload.length });
          res.write(payload.subarray(0, MiB), () => res.socket?.destroy());
          return;
        case '/declared-big.img':
          res.writeHead(200, { 'content-length': 64 * MiB });
          res.write(payload.subarray(0, 1024));
          return;
        case '/endless.img':
          // No Content-Length: only the running count can stop it.
          Readable.from(
            (function* () {
              for (let i = 0; i < 64; i++) yield payload.subarray(0, MiB);
            })(),
          ).pipe(res);
          return;
        default:
          res.writeHead(404).end('no such file');
      }
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    t = await startTestApp(kind, {
      NQVM_MAX_IMPORT_BYTES: String(8 * MiB),
      NQVM_MAX_UPLOAD_BYTES: String(60 * MiB),
      // The origin server of these tests is on loopback, which imports may reach only when allowed.
      NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.0/8',
    });
  });
  afterAll(async () => {
    await t.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });

  const importUrl = (name: string, url: string, expected?: string) =>
    t.request({
      method: 'POST',
      url: '/v1/images',
      payload: { name, kind: 'rootfs', source: { type: 'url', url, ...(expected ? { sha256: expected } : {}) } },
    });
  const getImage = (id: string) => t.request({ method: 'GET', url: `/v1/images/${id}` });
  const storeClean = () => {
    expect(filesUnder(join(t.dataDir, 'images', 'tmp'))).toEqual([]);
  };

  it('answers 202 importing, shows progress while the body arrives, then is ready with the computed sha256', async () => {
    gate = new Promise((r) => {
      release = r;
    });
    const res = await importUrl('from-url', `${base}/slow.img`, sha(payload).toUpperCase());
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ state: 'importing', sha256: null, bytes_done: 0 });
    const id = res.json().id as string;
    const midway = await until('progress', async () => {
      const img = (await getImage(id)).json();
      return img.state === 'importing' && img.bytes_done > 0 ? img : undefined;
    });
    expect(midway.bytes_done).toBeLessThan(payload.length);
    expect(midway.bytes_total).toBe(payload.length);
    release();
    const ready = await until('ready', async () => {
      const img = (await getImage(id)).json();
      return img.state === 'ready' ? img : undefined;
    });
    expect(ready).toMatchObject({ sha256: sha(payload), size_bytes: payload.length, bytes_done: payload.length });
    expect(filesUnder(join(t.dataDir, 'images', 'sha256'))).toContain(sha(payload));
    const content = await t.request({ method: 'GET', url: `/v1/images/${id}/content` });
    expect(sha(content.rawPayload)).toBe(sha(payload));
    // A manager without the bytes (image storage not shared between managers) says so: 503, never a 500.
    const file = join(t.dataDir, 'images', 'sha256', sha(payload).slice(0, 2), sha(payload));
    renameSync(file, `${file}.aside`);
    const missing = await t.request({ method: 'GET', url: `/v1/images/${id}/content` });
    renameSync(`${file}.aside`, file);
    expect(missing.statusCode).toBe(503);
    expect(missing.json()).toMatchObject({ code: 'image_content_unavailable' });
    storeClean();
  });

  it('refuses a template on an importing image, and deleting an importing image aborts it leaving nothing', async () => {
    gate = new Promise((r) => {
      release = r;
    });
    const res = await importUrl('held', `${base}/slow.img`);
    const id = res.json().id as string;
    await until('progress', async () => ((await getImage(id)).json().bytes_done > 0 ? true : undefined));
    const kernel = await t.request({
      method: 'POST',
      url: '/v1/images/upload?name=held-kernel&kind=kernel',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from('k'),
    });
    const tpl = await t.request({
      method: 'POST',
      url: '/v1/templates',
      payload: {
        name: 'on-held',
        spec: { vcpu: 1, mem_mib: 128, kernel_image_id: kernel.json().id, rootfs_image_id: id },
      },
    });
    expect(tpl.statusCode).toBe(422);
    expect(tpl.json()).toMatchObject({ code: 'image_not_ready', field: 'body.spec.rootfs_image_id' });
    expect((await t.request({ method: 'DELETE', url: `/v1/images/${id}` })).statusCode).toBe(204);
    expect((await getImage(id)).statusCode).toBe(404);
    release();
    const ev = await t.request({ method: 'GET', url: `/v1/events?resource_type=image&resource_id=${id}` });
    expect(ev.json().items.map((e: { action: string; result: string }) => `${e.action}:${e.result}`)).toEqual([
      'delete:ok',
      'import:error',
      'import_started:info',
    ]);
    storeClean();
  });

  const failures: [string, string, RegExp, string?][] = [
    ['a 404 from the server', '/missing.img', /404/],
    ['a wrong expected sha256', '/file.img', /sha256 mismatch/, '0'.repeat(64)],
    ['a connection cut mid-body', '/abort.img', /broke off/],
    ['a Content-Length over the limit', '/declared-big.img', /larger than the limit/],
    ['a body that grows over the limit', '/endless.img', /larger than the limit/],
  ];
  it.each(failures)(
    'an import failing on %s leaves no row, no file and an error event',
    async (_, path, reason, expected) => {
      const before = filesUnder(join(t.dataDir, 'images', 'sha256'));
      const res = await importUrl(`bad-${path.slice(1, 8)}`, `${base}${path}`, expected);
      expect(res.statusCode).toBe(202);
      const id = res.json().id as string;
      const ev = await until('the error event', async () => {
        const r = await t.request({
          method: 'GET',
          url: `/v1/events?resource_type=image&resource_id=${id}&action=import&result=error`,
        });
        return r.json().items[0];
      });
      expect(ev.detail.reason).toMatch(reason);
      expect((await getImage(id)).statusCode).toBe(404);
      expect(filesUnder(join(t.dataDir, 'images', 'sha256'))).toEqual(before);
      storeClean();
    },
  );

  it('streams a 50 MB upload to disk without holding it in memory', async () => {
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const chunk = randomBytes(MiB);
    const hash = createHash('sha256');
    for (let i = 0; i < 50; i++) hash.update(chunk);
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${address}/v1/images/upload?name=big-upload&kind=rootfs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/octet-stream' },
      });
      req.on('response', (r) => {
        let body = '';
        r.on('data', (d: Buffer) => {
          body += d.toString();
        });
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      Readable.from(
        (function* () {
          for (let i = 0; i < 50; i++) yield chunk;
        })(),
      ).pipe(req);
    });
    clearInterval(sampler);
    expect(res.status).toBe(201);
    expect(JSON.parse(res.body)).toMatchObject({ size_bytes: 50 * MiB, sha256: hash.digest('hex'), state: 'ready' });
    expect(peak - rssBefore).toBeLessThan(25 * MiB);
  });

  it('refuses an upload whose Content-Length is over the limit before reading it, leaving nothing', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/images/upload?name=too-big&kind=rootfs',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(61 * MiB) },
      payload: Readable.from([Buffer.alloc(10)]),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ code: 'image_too_large', field: 'body' });
    expect((await t.request({ method: 'GET', url: '/v1/images?q=too-big' })).json().items).toEqual([]);
    storeClean();
  });
});
