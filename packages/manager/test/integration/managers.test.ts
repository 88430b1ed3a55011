import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import WebSocket from 'ws';
import { type Database, openPostgres } from '../../src/db/client.ts';
import { openTestDatabase, startTestApp, type TestApp } from '../support/harness.ts';
import { createDatabase } from '../support/postgres.ts';
import { type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

interface Message {
  type: string;
  event?: { id: string; action: string; resource_id: string | null; detail: Record<string, unknown> };
}

async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Follows `/v1/events/ws` of a listening manager; resolves once the stream says it is ready. */
async function follow(t: TestApp): Promise<{ got: Message[]; close(): void }> {
  const a = t.app.server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  const got: Message[] = [];
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events/ws`, { headers: { authorization: `Bearer ${t.token}` } });
  ws.on('message', (d) => got.push(JSON.parse(d.toString()) as Message));
  await new Promise((r) => ws.once('open', r));
  await until('the stream to be ready', () => got.some((m) => m.type === 'ready'));
  return { got, close: () => ws.close() };
}

const ENV = {
  MANAGER_RECONCILER_DISABLED: 'true',
  NQVM_SECRET_KEY: randomBytes(32).toString('base64'),
  NQVM_HOST_HEARTBEAT_TIMEOUT_S: '600',
};

/** Two managers on one PostgreSQL, as two processes would run: each with its own pool and its own LISTEN. */
describe('two managers on one PostgreSQL', () => {
  let a: TestApp;
  let b: TestApp;
  let dbA: Database;
  let dbB: Database;
  let host: StandinHost;
  let images: Record<'kernel_image_id' | 'initrd_image_id' | 'rootfs_image_id', string>;

  beforeAll(async () => {
    const url = await createDatabase(inject('pgBaseUrl'));
    dbA = openPostgres(url);
    dbB = openPostgres(url);
    a = await startTestApp('postgres', ENV, dbA);
    b = await startTestApp('postgres', ENV, dbB);
    await b.app.listen({ host: '127.0.0.1', port: 0 });
    host = await startStandinHost(a, (boot) => boot.answer(4242));
    await host.heartbeat([]);
    const stub = await uploadStubImages(a);
    images = { kernel_image_id: stub.kernel, initrd_image_id: stub.initrd, rootfs_image_id: stub.rootfs };
  });
  afterAll(async () => {
    await host?.close();
    await a?.close();
    await b?.close();
    await dbA?.close();
    await dbB?.close();
  });

  it('shows a WebSocket client on B the events A records, live, each once', async () => {
    const stream = await follow(b);
    try {
      const made = await a.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'made-on-a' } });
      expect(made.statusCode).toBe(201);
      await until("A's event on B", () => stream.got.some((m) => m.event?.detail.name === 'made-on-a'));
      // And B's own, in the same stream, once each.
      await b.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'made-on-b' } });
      await until("B's event on B", () => stream.got.some((m) => m.event?.detail.name === 'made-on-b'));
      const ids = stream.got.filter((m) => m.type === 'event').map((m) => m.event!.id);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      stream.close();
    }
  });

  it('answers a wait on B when A moves the VM, and B lists what A created at once', async () => {
    const created = await a.request({
      method: 'POST',
      url: '/v1/vms',
      payload: { name: 'vm-on-a', vcpu: 1, mem_mib: 128, start: false, ...images },
    });
    expect(created.statusCode, created.body).toBe(202);
    const id = created.json().id as string;
    // B's list pages are cached between changes: A's create drops them through the change feed.
    await until("A's VM in B's list", async () =>
      ((await b.request({ method: 'GET', url: '/v1/vms?limit=10' })).json().items as { id: string }[]).some(
        (v) => v.id === id,
      ),
    );
    const waiting = b.request({ method: 'GET', url: `/v1/vms/${id}/wait?state=running&timeout=60` });
    const started = await a.request({ method: 'POST', url: `/v1/vms/${id}/start` });
    expect(started.statusCode, started.body).toBeLessThan(300);
    const waited = await waiting;
    expect(waited.statusCode, waited.body).toBe(200);
    expect(waited.json()).toMatchObject({ id, state: 'running' });
    const listed = (await b.request({ method: 'GET', url: '/v1/vms?limit=10' })).json().items as {
      id: string;
      state: string;
    }[];
    expect(listed.find((v) => v.id === id)?.state).toBe('running');
  });
});

/** One process on the embedded database: the same change feed, notifications delivered in process. */
describe('the change feed on PGlite', () => {
  let t: TestApp;
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase('pglite');
    t = await startTestApp('pglite', ENV, db);
    await t.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await t?.close();
    await db?.close();
  });

  it('streams an event written by SQL outside the events service, and drops cached list pages it changes', async () => {
    const stream = await follow(t);
    try {
      const before = (await t.request({ method: 'GET', url: '/v1/events?limit=1' })).json().items[0] as { id: string };
      await db.withSession((s) =>
        s.exec(
          `INSERT INTO events (actor, resource_type, action, result, detail) VALUES ('system', 'vm', 'by_sql', 'info', '{}')`,
        ),
      );
      await until('the SQL event on the stream', () => stream.got.some((m) => m.event?.action === 'by_sql'));
      await until('the list to show it', async () => {
        const top = (await t.request({ method: 'GET', url: '/v1/events?limit=1' })).json().items[0] as {
          id: string;
          action: string;
        };
        return top.action === 'by_sql' && BigInt(top.id) > BigInt(before.id);
      });
    } finally {
      stream.close();
    }
  });
});
