import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { newPglite, openPglite } from '../../src/db/client.ts';
import { loadMigrations, MigrationError, migrate } from '../../src/db/migrate.ts';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const capacity = { cpus: 4, memory_mib: 8192, disk_free_bytes: 1e10, disk_total_bytes: 2e10 };
const capabilities = { vmm: ['qemu' as const], kvm: false, vsock: false, tc: true };

describe.each(DB_KINDS)('hosts and the live events stream on %s', (kind) => {
  let t: TestApp;
  let base = '';
  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true', NQVM_HOST_HEARTBEAT_TIMEOUT_S: '3' });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const a = t.app.server.address();
    base = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  afterAll(async () => t.close());

  it('registers with the join token only, heartbeats with the host secret, and reports health from its age', async () => {
    const bad = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: 'wrong-token-0000000000', name: 'h1', addr: 'http://127.0.0.1:9' },
    });
    expect(bad.statusCode).toBe(401);
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'h1', addr: 'http://127.0.0.1:9', labels: { zone: 'a' } },
    });
    expect(reg.statusCode).toBe(201);
    const { id, secret } = reg.json();
    const beat = (s: string) =>
      t.app.inject({
        method: 'POST',
        url: `/v1/hosts/${id}/heartbeat`,
        headers: { authorization: `Bearer ${s}` },
        payload: { capacity, capabilities, vms: [] },
      });
    expect((await beat('nqh_wrong')).statusCode).toBe(401);
    expect((await beat(secret)).statusCode).toBe(200);
    const host = (await t.request({ method: 'GET', url: `/v1/hosts/${id}` })).json();
    expect(host).toMatchObject({ name: 'h1', health: 'healthy', capacity, labels: { zone: 'a' } });
    const rows = await t.database.withSession((s) => s.query<Record<string, string>>('SELECT * FROM hosts'));
    expect(JSON.stringify(rows)).not.toContain(secret);
    await t.database.withSession((s) => s.query("UPDATE hosts SET last_seen_at = now() - interval '1 minute'"));
    expect((await t.request({ method: 'GET', url: `/v1/hosts/${id}` })).json().health).toBe('unreachable');
  });

  it('refuses to delete a host that still has VMs, and deletes it once it has none', async () => {
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'h2', addr: 'http://127.0.0.1:9' },
    });
    const { id, secret } = reg.json();
    await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${id}/heartbeat`,
      headers: { authorization: `Bearer ${secret}` },
      payload: { capacity, capabilities, vms: [] },
    });
    const img = async (k: string) =>
      (
        await t.request({
          method: 'POST',
          url: `/v1/images/upload?name=${k}-h2&kind=${k}`,
          headers: { 'content-type': 'application/octet-stream' },
          payload: Buffer.from(k),
        })
      ).json().id as string;
    const vm = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name: 'on-h2',
        vcpu: 1,
        mem_mib: 128,
        kernel_image_id: await img('kernel'),
        rootfs_image_id: await img('rootfs'),
        host_id: id,
        start: false,
      },
    });
    expect(vm.statusCode).toBe(202);
    const refused = await t.request({ method: 'DELETE', url: `/v1/hosts/${id}` });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('host_in_use');
    await t.database.withSession((s) => s.query('DELETE FROM vms WHERE id = $1', [vm.json().id]));
    expect((await t.request({ method: 'DELETE', url: `/v1/hosts/${id}` })).statusCode).toBe(204);
  });

  it('streams events live over the WebSocket and resumes after a cursor', async () => {
    const first = await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'ws-1' } });
    const events = (await t.request({ method: 'GET', url: '/v1/events?resource_type=token&limit=1' })).json();
    const after = events.items[0].id as string;
    expect(first.statusCode).toBe(201);
    const got: { type: string; event?: { action: string; detail: { name?: string } } }[] = [];
    const ws = new WebSocket(`ws://${base}/v1/events/ws?after=${after}&resource_type=token`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    ws.on('message', (d) => got.push(JSON.parse(d.toString())));
    await new Promise((r) => ws.once('open', r));
    const deadline = Date.now() + 10_000;
    while (!got.some((m) => m.type === 'ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await t.request({ method: 'POST', url: '/v1/tokens', payload: { name: 'ws-2' } });
    while (!got.some((m) => m.event?.detail.name === 'ws-2') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    ws.close();
    const names = got.filter((m) => m.type === 'event').map((m) => m.event!.detail.name);
    expect(names).toEqual(['ws-2']);
    expect(JSON.stringify(got)).not.toMatch(/nqt_/);
  });
});

describe('migrations', () => {
  it('stop with a MigrationError naming the migration and leave nothing of it applied', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nqvm-mig-'));
    writeFileSync(join(dir, '0001_good.sql'), 'CREATE TABLE a (id int);');
    writeFileSync(join(dir, '0002_broken.sql'), 'CREATE TABLE b (id int); SELECT no_such_function();');
    const db = openPglite(newPglite());
    await expect(migrate(db, loadMigrations(dir))).rejects.toThrow(MigrationError);
    await expect(migrate(db, loadMigrations(dir))).rejects.toThrow(/0002_broken/);
    const tables = await db.withSession((s) =>
      s.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"),
    );
    expect(tables.map((r) => r.tablename)).toEqual(['a', 'schema_migrations']);
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
