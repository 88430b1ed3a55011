import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type BootCall, type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

/**
 * A host that stops heartbeating while one VM runs and another is mid-boot: the running one becomes unknown, the
 * booting one stays starting and ends running with its pid when the agent answers — never lost as stopped.
 * The agent here is a small HTTP stand-in so the test decides when its boot call answers.
 */
describe.each(DB_KINDS)('reconciler and a host that misses heartbeats, on %s', (kind) => {
  let t: TestApp;
  let host: StandinHost;
  const held: BootCall[] = [];
  let boots = 0;

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
    t = await startTestApp(kind, { NQVM_HOST_HEARTBEAT_TIMEOUT_S: '3', NQVM_RECONCILE_INTERVAL_MS: '200' });
    // The first boot answers at once; the second is held until the test lets it go.
    host = await startStandinHost(t, (boot) => {
      if (boots++ === 0) boot.answer(4242);
      else held.push(boot);
    });
    expect((await host.heartbeat([])).statusCode).toBe(200);
  });
  afterAll(async () => {
    await host?.close();
    await t.close();
  });

  it('keeps a booting VM starting through the outage and records it running when its boot answers', async () => {
    const ids = await uploadStubImages(t);
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
    h.answer(5151);
    // It is recorded running with its pid; the host still misses heartbeats, so the next tick may already have
    // marked it unknown like the other one — either way it was never lost as stopped.
    await until('the booting VM to be recorded running', async () => {
      const v = await vm(booting);
      return ['running', 'unknown'].includes(v.state) && v.pid === 5151;
    });

    // The agent is back and reports both: the unknown one returns to running, nothing is stopped.
    const back = await host.heartbeat([
      { id: running, state: 'running', pid: 4242 },
      { id: booting, state: 'running', pid: 5151 },
    ]);
    expect(back.statusCode, back.body).toBe(200);
    for (const id of [running, booting])
      await until(`${id} back to running`, async () => (await vm(id)).state === 'running');
    expect((await vm(booting)).pid).toBe(5151);

    // Running, but its guest agent never reported ready: a snapshot could not be given a new identity later.
    const snap = await t.request({ method: 'POST', url: `/v1/vms/${running}/snapshots`, payload: { name: 's1' } });
    expect(snap.statusCode).toBe(409);
    expect(snap.json()).toMatchObject({ code: 'guest_not_ready' });
  });
});
