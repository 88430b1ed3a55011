import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookDelivery, WebhookPayload } from '@nqvm/api';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Database, openPostgres } from '../../src/db/client.ts';
import { verify } from '../../src/features/webhooks/webhooks.signature.ts';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { createDatabase } from '../support/postgres.ts';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A webhook receiver on loopback: answers `failures` requests with 503, then 204; records everything. */
class Receiver {
  readonly got: Received[] = [];
  failures = 0;
  private server!: Server;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = this.failures > 0 ? 503 : 204;
        if (this.failures > 0) this.failures--;
        this.got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const SECRET = 'whsec_test_0123456789abcdef';
const ENV = {
  MANAGER_RECONCILER_DISABLED: 'true',
  NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.1/32',
  NQVM_WEBHOOK_BACKOFF_MS: '100',
  NQVM_WEBHOOK_MAX_ATTEMPTS: '4',
  NQVM_SECRET_KEY: randomBytes(32).toString('base64'),
};

async function deliveries(t: TestApp, id: string): Promise<WebhookDelivery[]> {
  const res = await t.request({ method: 'GET', url: `/v1/webhooks/${id}/deliveries` });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as { items: WebhookDelivery[] }).items;
}

describe.each(DB_KINDS)('webhooks (%s)', (kind) => {
  let t: TestApp;
  let receiver: Receiver;

  beforeAll(async () => {
    receiver = await new Receiver().start();
    t = await startTestApp(kind, ENV);
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  it('POSTs a matching event signed with HMAC-SHA256 over the timestamp and body, once', async () => {
    const made = await t.request({
      method: 'POST',
      url: '/v1/webhooks',
      payload: { url: receiver.url, events: ['token.*'], secret: SECRET, description: 'tokens' },
    });
    expect(made.statusCode, made.body).toBe(201);
    const hook = made.json() as { id: string; secret: string; events: string[]; enabled: boolean };
    expect(hook).toMatchObject({ secret: SECRET, events: ['token.*'], enabled: true });
    expect((await t.request({ method: 'GET', url: `/v1/webhooks/${hook.id}` })).json()).not.toHaveProperty('secret');

    // The webhook's own creation is an event too (webhook.create): not in the filter, not sent.
    const token = await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'ci' } });
    expect(token.statusCode).toBe(201);
    const got = await until('the delivery', () => receiver.got[0]);
    const payload = JSON.parse(got.body) as WebhookPayload;
    expect(payload.event).toMatchObject({ resource_type: 'token', action: 'create', detail: { name: 'ci' } });
    expect(payload.webhook_id).toBe(hook.id);
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['nqvm-event-type']).toBe('token.create');
    expect(got.headers['nqvm-delivery-id']).toBe(payload.delivery_id);
    const signature = String(got.headers['nqvm-signature']);
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verify(SECRET, signature, got.body, Date.now() / 1000)).toBe(true);
    expect(verify('another-secret-of-16+', signature, got.body, Date.now() / 1000)).toBe(false);
    expect(verify(SECRET, signature, got.body.replace('"ci"', '"cj"'), Date.now() / 1000)).toBe(false);

    const [d] = await until('the delivery to be recorded', async () => {
      const list = await deliveries(t, hook.id);
      return list[0]?.state === 'succeeded' ? list : undefined;
    });
    expect(d).toMatchObject({ state: 'succeeded', attempts: 1, response_code: 204, event_type: 'token.create' });
    expect(await deliveries(t, hook.id)).toHaveLength(1);
    expect(receiver.got).toHaveLength(1);
    await t.request({ method: 'DELETE', url: `/v1/webhooks/${hook.id}` });
  });

  it('retries a failing receiver with backoff until it answers 2xx, each attempt signed', async () => {
    receiver.got.length = 0;
    receiver.failures = 2;
    const hook = (
      await t.request({
        method: 'POST',
        url: '/v1/webhooks',
        payload: { url: receiver.url, events: ['token.revoke'], secret: SECRET },
      })
    ).json() as { id: string };
    const token = (await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'gone' } })).json() as {
      id: string;
    };
    expect((await t.request({ method: 'DELETE', url: `/v1/tokens/${token.id}` })).statusCode).toBe(204);
    const [d] = await until('the third attempt to succeed', async () => {
      const list = await deliveries(t, hook.id);
      return list[0]?.state === 'succeeded' ? list : undefined;
    });
    expect(d).toMatchObject({ attempts: 3, response_code: 204, last_error: null });
    expect(receiver.got.map((r) => r.status)).toEqual([503, 503, 204]);
    expect(new Set(receiver.got.map((r) => r.headers['nqvm-delivery-id']))).toEqual(new Set([d!.id]));
    expect(receiver.got.map((r) => r.headers['nqvm-delivery-attempt'])).toEqual(['1', '2', '3']);
    for (const r of receiver.got)
      expect(verify(SECRET, String(r.headers['nqvm-signature']), r.body, Date.now() / 1000)).toBe(true);
  });

  it('gives a delivery up as failed after the configured attempts, with the last answer', async () => {
    receiver.got.length = 0;
    receiver.failures = 100;
    const hook = (
      await t.request({ method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['token.create'] } })
    ).json() as { id: string; secret: string };
    expect(hook.secret).toMatch(/^whsec_/);
    await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'never-heard' } });
    const [d] = await until('the delivery to fail', async () => {
      const list = await deliveries(t, hook.id);
      return list[0]?.state === 'failed' ? list : undefined;
    });
    expect(d).toMatchObject({ attempts: 4, response_code: 503, last_error: 'the receiver answered 503' });
    expect(receiver.got).toHaveLength(4);
    receiver.failures = 0;
    await t.request({ method: 'DELETE', url: `/v1/webhooks/${hook.id}` });
  });

  it('refuses URLs that reach internal ranges, as URL imports do, and bad input with its field', async () => {
    for (const url of [
      'http://10.1.2.3/hook',
      'http://169.254.169.254/latest',
      'http://[::1]:80/',
      'http://0.0.0.0/',
    ]) {
      const res = await t.request({ method: 'POST', url: '/v1/webhooks', payload: { url } });
      expect(res.statusCode, url).toBe(400);
      expect(res.json()).toMatchObject({ code: 'url_not_allowed', field: 'body.url' });
    }
    const ftp = await t.request({ method: 'POST', url: '/v1/webhooks', payload: { url: 'ftp://example.com/x' } });
    expect(ftp.json()).toMatchObject({ code: 'invalid_url', field: 'body.url' });
    const creds = await t.request({ method: 'POST', url: '/v1/webhooks', payload: { url: 'http://a:b@127.0.0.1/' } });
    expect(creds.json()).toMatchObject({ code: 'invalid_url', field: 'body.url' });
    const filter = await t.request({
      method: 'POST',
      url: '/v1/webhooks',
      payload: { url: receiver.url, events: ["vm.%' OR 1=1"] },
    });
    expect(filter.statusCode).toBe(400);
    expect(filter.json()).toMatchObject({ code: 'validation_failed' });
    const missing = await t.request({ method: 'GET', url: '/v1/webhooks/00000000-0000-4000-8000-000000000000' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: 'webhook_not_found' });
  });

  it('changes the filter, disables and deletes a webhook; a disabled one gets nothing', async () => {
    receiver.got.length = 0;
    const hook = (
      await t.request({ method: 'POST', url: '/v1/webhooks', payload: { url: receiver.url, events: ['session.*'] } })
    ).json() as { id: string };
    const patched = await t.request({
      method: 'PATCH',
      url: `/v1/webhooks/${hook.id}`,
      payload: { events: ['token.create'], enabled: false },
    });
    expect(patched.statusCode, patched.body).toBe(200);
    expect(patched.json()).toMatchObject({ events: ['token.create'], enabled: false });
    await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'unheard' } });
    expect(await deliveries(t, hook.id)).toEqual([]);
    const list = await t.request({ method: 'GET', url: '/v1/webhooks' });
    expect((list.json() as { items: { id: string }[] }).items.map((w) => w.id)).toContain(hook.id);
    expect((await t.request({ method: 'DELETE', url: `/v1/webhooks/${hook.id}` })).statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: `/v1/webhooks/${hook.id}` })).statusCode).toBe(404);
  });
});

describe('webhook deliveries across a manager restart (PostgreSQL)', () => {
  let url: string;
  let receiver: Receiver;
  const open: { t: TestApp; db: Database }[] = [];

  async function manager(): Promise<TestApp> {
    const db = openPostgres(url);
    const t = await startTestApp('postgres', ENV, db);
    open.push({ t, db });
    return t;
  }

  beforeAll(async () => {
    url = await createDatabase(inject('pgBaseUrl'));
    receiver = await new Receiver().start();
  });
  afterAll(async () => {
    for (const { t, db } of open) {
      await t.close();
      await db.close();
    }
    await receiver?.close();
  });

  it('loses no delivery when the manager stops while the receiver is failing: the next one sends it', async () => {
    const a = await manager();
    receiver.failures = 1_000;
    const hook = (
      await a.request({
        method: 'POST',
        url: '/v1/webhooks',
        payload: { url: receiver.url, events: ['token.create'], secret: SECRET },
      })
    ).json() as { id: string };
    for (const name of ['one', 'two', 'three'])
      await a.request({ method: 'POST', url: '/v1/tokens', payload: { name } });
    await until('every delivery to have failed once', async () => {
      const list = await deliveries(a, hook.id);
      return list.length === 3 && list.every((d) => d.attempts >= 1 && d.state === 'pending') ? list : undefined;
    });
    await a.close();
    open.shift();
    receiver.failures = 0;
    receiver.got.length = 0;

    const b = await manager();
    const done = await until('the deliveries after the restart', async () => {
      const list = await deliveries(b, hook.id);
      return list.every((d) => d.state === 'succeeded') ? list : undefined;
    });
    expect(done).toHaveLength(3);
    const names = receiver.got
      .filter((r) => r.status === 204)
      .map((r) => (JSON.parse(r.body) as WebhookPayload).event.detail.name);
    expect(names.sort()).toEqual(['one', 'three', 'two']);
    for (const r of receiver.got)
      expect(verify(SECRET, String(r.headers['nqvm-signature']), r.body, Date.now() / 1000)).toBe(true);
  });
});
