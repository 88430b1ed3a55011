import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OperationsRepository } from '../../src/features/operations/operations.repository.ts';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type BootCall, type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

/**
 * Durable operations on a real database: a create answers with its operation, which ends with a reason; the table
 * is listed and paged; claims skip rows another manager holds; an operation whose claimer died is resumed by another
 * manager and its agent call, retried with the same operation id, is answered once; nothing but the state machine
 * can write a VM's state.
 */
describe.each(DB_KINDS)('durable operations on %s', (kind) => {
  let t: TestApp;
  let host: StandinHost;
  let ids: Record<'kernel' | 'initrd' | 'rootfs', string>;
  const boots: BootCall[] = [];
  let holdBoots = false;

  async function until<T>(what: string, fn: () => Promise<T | false>, ms = 30_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v !== false) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const get = async (url: string) => (await t.request({ method: 'GET', url })).json();
  const create = async (name: string, start = true) => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: { name, vcpu: 1, mem_mib: 256, kernel_image_id: ids.kernel, rootfs_image_id: ids.rootfs, start },
    });
    expect(res.statusCode, res.body).toBe(202);
    return res.json() as { id: string; state: string; operation_id?: string };
  };

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    host = await startStandinHost(t, (boot) => {
      boots.push(boot);
      if (!holdBoots) boot.answer(4000 + boots.length);
    });
    expect((await host.heartbeat([])).statusCode).toBe(200);
    ids = await uploadStubImages(t);
  });
  afterAll(async () => {
    await host?.close();
    await t?.close();
  });

  it('a create answers with its operation id; the operation ends succeeded with a reason and is listed per VM', async () => {
    const vm = await create('op-create');
    expect(vm.state).toBe('creating');
    expect(vm.operation_id).toMatch(/^[0-9a-f-]{36}$/);
    const op = await until('the create operation to end', async () => {
      const o = await get(`/v1/operations/${vm.operation_id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(o.state) && o;
    });
    expect(op).toMatchObject({ kind: 'create', vm_id: vm.id, state: 'succeeded', attempts: 1, step: 'agent' });
    expect(op.reason).toMatch(/^running, pid \d+$/);
    expect(op.finished_at).toBeTruthy();
    expect((await get(`/v1/vms/${vm.id}`)).state).toBe('running');
    // The agent got the operation id with the spec, so a retry of this boot is recognised as the same one.
    expect(boots.at(-1)?.spec.operation_id).toBe(vm.operation_id);

    const stop = await t.request({ method: 'POST', url: `/v1/vms/${vm.id}/stop` });
    expect(stop.statusCode).toBe(202);
    expect(stop.json().operation_id).toMatch(/^[0-9a-f-]{36}$/);
    await until('stopped', async () => (await get(`/v1/vms/${vm.id}`)).state === 'stopped');
    const listed = await get(`/v1/operations?vm_id=${vm.id}`);
    expect(listed.items.map((o: { kind: string; state: string }) => `${o.kind}:${o.state}`)).toEqual([
      'stop:succeeded',
      'create:succeeded',
    ]);
    // Events carry the operation that caused them.
    const events = await get(`/v1/events?resource_id=${vm.id}&action=stopped`);
    expect(events.items[0].detail.operation_id).toBe(stop.json().operation_id);

    // Keyset pages, newest first, one query each.
    const first = await get(`/v1/operations?vm_id=${vm.id}&limit=1`);
    expect(first.items.map((o: { kind: string }) => o.kind)).toEqual(['stop']);
    const second = await get(`/v1/operations?vm_id=${vm.id}&limit=1&cursor=${first.next_cursor}`);
    expect(second.items.map((o: { kind: string }) => o.kind)).toEqual(['create']);
    expect((await get(`/v1/operations?state=failed&vm_id=${vm.id}`)).items).toEqual([]);
    const bad = await t.request({ method: 'GET', url: '/v1/operations?cursor=nope' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'invalid_cursor', field: 'query.cursor' });
    const missing = await t.request({ method: 'GET', url: '/v1/operations/00000000-0000-4000-8000-000000000001' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('operation_not_found');
  });

  it('refuses any write of vms.state that does not come through the state machine', async () => {
    const vm = await create('op-guarded', false);
    await expect(t.database.db.execute(sql`UPDATE vms SET state = 'running' WHERE id = ${vm.id}`)).rejects.toThrow();
    expect((await get(`/v1/vms/${vm.id}`)).state).toBe('stopped');
    // Other columns stay writable.
    await t.database.db.execute(sql`UPDATE vms SET description = 'ok' WHERE id = ${vm.id}`);
    expect((await get(`/v1/vms/${vm.id}`)).description).toBe('ok');
  });

  it('an operation whose manager died is resumed once its lease expires; the retried boot reaches the agent with the same id', async () => {
    holdBoots = true;
    const before = boots.length;
    const vm = await create('op-resumed');
    await until('the boot to reach the agent', async () => boots.length === before + 1);
    // The manager that claimed it "dies": its lease lapses (as if it stopped renewing) while the agent still works.
    await t.database.db.execute(
      sql`UPDATE operations SET lease_owner = 'dead-manager', lease_expires_at = now() - interval '1 second' WHERE id = ${vm.operation_id}`,
    );
    holdBoots = false;
    await until('the boot to be retried', async () => boots.length === before + 2);
    const retried = boots[before + 1];
    expect(retried?.id).toBe(vm.id);
    expect(retried?.spec.operation_id).toBe(vm.operation_id);
    // The first call answers late (the agent adopts: one VMM); whichever lands first records the VM running once.
    boots[before]?.answer(4999);
    await until('running', async () => (await get(`/v1/vms/${vm.id}`)).state === 'running');
    const op = await until('the operation to end', async () => {
      const o = await get(`/v1/operations/${vm.operation_id}`);
      return o.state !== 'running' && o.state !== 'queued' && o;
    });
    expect(op).toMatchObject({ state: 'succeeded', attempts: 2 });
    const bootEvents = await get(`/v1/events?resource_id=${vm.id}&action=boot`);
    expect(bootEvents.items).toHaveLength(1);
  });

  it('claims skip rows another manager is claiming, and one VM runs one operation at a time', async () => {
    const repo = new OperationsRepository(t.database.db);
    const vmA = await create('op-claim-a', false);
    const vmB = await create('op-claim-b', false);
    // Queued straight into the table, far in the future for the running worker of this app.
    const later = sql`now() + interval '1 hour'`;
    await t.database.db.execute(sql`INSERT INTO operations (kind, vm_id, actor, run_after) VALUES
      ('stop', ${vmA.id}, 'test', ${later}), ('delete', ${vmA.id}, 'test', ${later}), ('stop', ${vmB.id}, 'test', ${later})`);
    const inAnHour = new Date(Date.now() + 3_600_000 + 60_000);
    const lease = new Date(inAnHour.getTime() + 60_000);
    const [m1, m2] = await Promise.all([repo.claim('m1', inAnHour, lease, 10), repo.claim('m2', inAnHour, lease, 10)]);
    const claimed = [...m1, ...m2].filter((o) => o.vmId === vmA.id || o.vmId === vmB.id);
    // Each claimed once, by one manager; A's delete waits for A's stop.
    expect(claimed.map((o) => `${o.vmId === vmA.id ? 'A' : 'B'}:${o.kind}`).sort()).toEqual(['A:stop', 'B:stop']);
    expect(new Set(claimed.map((o) => o.id)).size).toBe(2);
    for (const o of claimed) expect(o.attempts).toBe(1);
    await t.database.db.execute(
      sql`UPDATE operations SET state = 'cancelled', reason = 'test', finished_at = now() WHERE vm_id IN (${vmA.id}, ${vmB.id}) AND state IN ('queued', 'running')`,
    );
  });
});
