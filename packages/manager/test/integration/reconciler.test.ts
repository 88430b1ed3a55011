import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, JOIN_TOKEN, startTestApp, type TestApp } from '../support/harness.ts';

/**
 * A host that stops heartbeating while one VM runs and another is mid-boot: the running one becomes unknown, the
 * booting one stays starting and ends running with its pid when the agent answers — never lost as stopped.
 * The agent here is a small HTTP stand-in so the test decides when its boot call answers.
 */
describe.each(DB_KINDS)('reconciler and a host that misses heartbeats, on %s', (kind) => {
  let t: TestApp;
  let hostId = '';
  let secret = '';
  const held: { id: string; res: ServerResponse }[] = [];
  let boots = 0;
  const agent = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const m = /^\/agent\/v1\/vms\/([0-9a-f-]{36})\/boot$/.exec(req.url ?? '');
    if (!m?.[1]) res.writeHead(404).end();
    // The first boot answers at once; the second is held until the test lets it go.
    else if (boots++ === 0) answer(res, m[1], 4242);
    else held.push({ id: m[1], res });
  });
  const answer = (res: ServerResponse, id: string, pid: number) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ id, state: 'running', pid, booted_at: new Date().toISOString() }));

  const heartbeat = (vms: unknown[]) =>
    t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${hostId}/heartbeat`,
      headers: { authorization: `Bearer ${secret}` },
      payload: {
        capacity: { cpus: 4, memory_mib: 4096, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms,
      },
    });
  const vm = async (id: string) =>
    (await t.request({ method: 'GET', url: `/v1/vms/${id}` })).json() as { state: string; pid: number | null };
  async function until<T>(what: string, fn: () => Promise<T | false>, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    t = await startTestApp(kind, { NQVM_HOST_HEARTBEAT_TIMEOUT_S: '3', NQVM_RECONCILE_INTERVAL_MS: '200' });
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: {
        join_token: JOIN_TOKEN,
        name: 'h1',
        addr: `http://127.0.0.1:${(agent.address() as AddressInfo).port}`,
      },
    });
    hostId = reg.json().id;
    secret = reg.json().secret;
    expect((await heartbeat([])).statusCode).toBe(200);
  });
  afterAll(async () => {
    for (const h of held) h.res.destroy();
    await t.close();
    await new Promise((r) => agent.close(r));
  });

  it('keeps a booting VM starting through the outage and records it running when its boot answers', async () => {
    const ids: Record<string, string> = {};
    for (const k of ['kernel', 'initrd', 'rootfs']) {
      const res = await t.request({
        method: 'POST',
        url: `/v1/images/upload?name=${k}-img&kind=${k}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from(`${k} bytes`),
      });
      ids[k] = res.json().id;
    }
    const create = async (name: string) => {
      const res = await t.request({
        method: 'POST',
        url: '/v1/vms',
        payload: {
          name,
          vcpu: 1,
          mem_mib: 256,
          kernel_image_id: ids.kernel,
          initrd_image_id: ids.initrd,
          rootfs_image_id: ids.rootfs,
        },
      });
      expect(res.statusCode, res.body).toBe(202);
      return res.json().id as string;
    };
    const running = await create('settled');
    await until('the first VM running', async () => (await vm(running)).state === 'running');
    const booting = await create('booting');
    await until('the second boot to reach the agent', async () => held.length === 1);
    expect((await vm(booting)).state).toBe('starting');

    // No heartbeat now: the host goes unreachable and the reconciler marks the settled VM unknown.
    await until('the running VM to become unknown', async () => (await vm(running)).state === 'unknown');
    expect((await vm(booting)).state).toBe('starting');

    const h = held.shift();
    if (!h) throw new Error('no held boot');
    answer(h.res, h.id, 5151);
    await until('the booting VM to be running', async () => (await vm(booting)).state === 'running');
    expect((await vm(booting)).pid).toBe(5151);

    // The agent is back and reports both: the unknown one returns to running, nothing is stopped.
    const back = await heartbeat([
      { id: running, state: 'running', pid: 4242 },
      { id: booting, state: 'running', pid: 5151 },
    ]);
    expect(back.statusCode, back.body).toBe(200);
    await until('the unknown VM back to running', async () => (await vm(running)).state === 'running');
    expect((await vm(booting)).state).toBe('running');

    // Running, but its guest agent never reported ready: a snapshot could not be given a new identity later.
    const snap = await t.request({ method: 'POST', url: `/v1/vms/${running}/snapshots`, payload: { name: 's1' } });
    expect(snap.statusCode).toBe(409);
    expect(snap.json()).toMatchObject({ code: 'guest_not_ready' });
  });
});
