import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const DEFAULT_PROJECT = '00000000-0000-4000-8000-000000000001';

/** Quotas checked atomically with the writes they limit, and usage metered from the rows state changes leave. */
describe.each(DB_KINDS)('quotas and usage on %s', (kind) => {
  let t: TestApp;
  const ids: Record<string, string> = {};

  async function image(kindName: string, name: string) {
    const res = await t.request({
      method: 'POST',
      url: `/v1/images/upload?name=${name}&kind=${kindName}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.alloc(64 * 1024, name),
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  const quota = (body: Record<string, number | null>) =>
    t.request({ method: 'PUT', url: `/v1/projects/${DEFAULT_PROJECT}/quota`, payload: body });

  const vm = (name: string, extra: Record<string, unknown> = {}) =>
    t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name,
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: ids.kernel,
        rootfs_image_id: ids.rootfs,
        start: false,
        ...extra,
      },
    });

  const sql = async <T>(text: string, params: unknown[] = []) =>
    t.database.withSession((s) => s.query<T>(text, params));

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true', NQVM_ALERT_INTERVAL_S: '1' });
    ids.kernel = await image('kernel', 'k1');
    ids.rootfs = await image('rootfs', 'r1');
    // A host that registered and reported capacity; its agent address answers nothing (port 9 on loopback).
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'h1', addr: 'http://127.0.0.1:9' },
    });
    const hb = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${reg.json().id}/heartbeat`,
      headers: { authorization: `Bearer ${reg.json().secret}` },
      payload: {
        capacity: { cpus: 8, memory_mib: 8192, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
    });
    expect(hb.statusCode).toBe(200);
  });
  afterAll(async () => t.close());

  it('starts unlimited, shows what the project uses, and keeps fields a PUT leaves out', async () => {
    const before = await t.request({ method: 'GET', url: `/v1/projects/${DEFAULT_PROJECT}/quota` });
    expect(before.statusCode, before.body).toBe(200);
    expect(before.json()).toMatchObject({ vms: null, vcpus: null, used: { vms: 0, running_vms: 0 } });
    expect(before.json().used.disk_gib).toBeGreaterThan(0);
    expect((await quota({ vcpus: 4 })).json()).toMatchObject({ vcpus: 4, vms: null });
    expect((await quota({ vms: 10 })).json()).toMatchObject({ vcpus: 4, vms: 10 });
    expect((await quota({ vcpus: null, vms: null })).json()).toMatchObject({ vcpus: null, vms: null });
    const bad = await quota({ vms: -1 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().field).toBe('body.vms');
    const missing = await t.request({ method: 'GET', url: '/v1/projects/00000000-0000-4000-8000-00000000dead/quota' });
    expect(missing.statusCode).toBe(404);
  });

  it('gives the last VM slot to exactly one of 8 parallel creates; the others get quota_exceeded naming it', async () => {
    for (const n of ['a1', 'a2']) expect((await vm(n)).statusCode).toBe(202);
    await quota({ vms: 3 });
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => vm(`race-${i}`)));
    const codes = answers.map((r) => r.statusCode).sort();
    expect(codes).toEqual([202, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of answers.filter((a) => a.statusCode === 409)) {
      expect(r.headers['content-type']).toMatch(/problem\+json/);
      expect(r.json()).toMatchObject({ code: 'quota_exceeded', resource: 'vms', limit: 3, used: 3, requested: 1 });
      expect(r.json().detail).toMatch(/vms quota is 3/);
    }
    const [count] = await sql<{ n: string }>('SELECT count(*) AS n FROM vms');
    expect(Number(count?.n)).toBe(3);
    await quota({ vms: null });
  });

  it('refuses a start past the vCPU quota and leaves the VM stopped', async () => {
    const created = await vm('big', { vcpu: 2 });
    expect(created.statusCode).toBe(202);
    await quota({ vcpus: 1 });
    const start = await t.request({ method: 'POST', url: `/v1/vms/${created.json().id}/start` });
    expect(start.statusCode).toBe(409);
    expect(start.json()).toMatchObject({ code: 'quota_exceeded', resource: 'vcpus', limit: 1, used: 0, requested: 2 });
    const after = await t.request({ method: 'GET', url: `/v1/vms/${created.json().id}` });
    expect(after.json().state).toBe('stopped');
    // A booting create counts its vCPUs at once; a stopped one does not.
    const booting = await vm('big-booting', { vcpu: 2, start: true });
    expect(booting.statusCode).toBe(409);
    expect(booting.json()).toMatchObject({ resource: 'vcpus' });
    await quota({ vcpus: null });
  });

  it('fires a quota_above alert rule while a project uses more than the share, and resolves it after', async () => {
    const made = await t.request({
      method: 'POST',
      url: '/v1/alert-rules',
      payload: { name: 'vms-80', kind: 'quota_above', project_id: DEFAULT_PROJECT, threshold: 80 },
    });
    expect(made.statusCode, made.body).toBe(201);
    const rule = async () => (await t.request({ method: 'GET', url: `/v1/alert-rules/${made.json().id}` })).json();
    const used = (await t.request({ method: 'GET', url: `/v1/projects/${DEFAULT_PROJECT}/quota` })).json().used.vms;
    await quota({ vms: used });
    const deadline = Date.now() + 30_000;
    let firing: { subject_type: string; subject_id: string; reason: string } | undefined;
    while (!firing && Date.now() < deadline) {
      firing = (await rule()).firing[0];
      if (!firing) await new Promise((r) => setTimeout(r, 200));
    }
    expect(firing).toMatchObject({ subject_type: 'project', subject_id: DEFAULT_PROJECT });
    expect(firing!.reason).toBe(`vms at 100 % of its quota (${used} of ${used})`);
    await quota({ vms: null });
    while ((await rule()).firing.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect((await rule()).firing).toHaveLength(0);
    const wrong = await t.request({
      method: 'POST',
      url: '/v1/alert-rules',
      payload: { name: 'no-threshold', kind: 'quota_above' },
    });
    expect(wrong.statusCode).toBe(422);
    expect(wrong.json()).toMatchObject({ code: 'alert_rule_invalid', field: 'body.threshold' });
    await t.request({ method: 'DELETE', url: `/v1/alert-rules/${made.json().id}` });
  });

  it('refuses an image import once the disk quota is used up', async () => {
    await quota({ disk_gib: 0 });
    const res = await t.request({
      method: 'POST',
      url: '/v1/images/upload?name=over&kind=rootfs',
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from('more bytes'),
    });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ code: 'quota_exceeded', resource: 'disk_gib', limit: 0 });
    const listed = await t.request({ method: 'GET', url: '/v1/images?name=over' });
    expect(listed.json().items).toHaveLength(0);
    await quota({ disk_gib: null });
  });

  it('gives the last function slot to exactly one of 4 parallel creates', async () => {
    await quota({ functions: 1 });
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        t.request({
          method: 'POST',
          url: '/v1/functions',
          payload: { name: `quota-fn-${i}`, runtime: 'node20', code: 'exports.handler = async () => 1;' },
        }),
      ),
    );
    expect(answers.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409]);
    for (const r of answers.filter((a) => a.statusCode === 409))
      expect(r.json()).toMatchObject({ code: 'quota_exceeded', resource: 'functions', limit: 1, used: 1 });
    const listed = await t.request({ method: 'GET', url: '/v1/functions' });
    expect(listed.json().items).toHaveLength(1);
    await quota({ functions: null });
  });

  it('meters a VM from its state changes: vCPU and memory while running, its disk while it exists', async () => {
    const created = await vm('metered', { vcpu: 2, mem_mib: 512 });
    expect(created.statusCode, created.body).toBe(202);
    const id = created.json().id as string;
    // The state machine's transaction, as a boot's would write it (the trigger guard allows it only there).
    await t.database.withSession(async (s) => {
      await s.exec('BEGIN');
      await s.query("SELECT set_config('nqvm.vm_state_change', 'on', true)");
      await s.query("UPDATE vms SET state = 'running' WHERE id = $1", [id]);
      await s.exec('COMMIT');
    });
    // Backdate: created two hours ago, running for the last hour.
    const log = await sql<{ id: string; active: boolean }>(
      'SELECT id, active FROM usage_log WHERE resource_id = $1 ORDER BY id',
      [id],
    );
    expect(log.map((r) => r.active)).toEqual([false, true]);
    await sql("UPDATE usage_log SET at = now() - interval '2 hours' WHERE id = $1", [log[0]!.id]);
    await sql("UPDATE usage_log SET at = now() - interval '1 hour' WHERE id = $1", [log[1]!.id]);
    const usage = await t.request({
      method: 'GET',
      url: `/v1/projects/${DEFAULT_PROJECT}/usage?granularity=hour`,
    });
    expect(usage.statusCode, usage.body).toBe(200);
    const mine = usage.json().resources.find((r: { resource_id: string }) => r.resource_id === id);
    expect(mine.total.vcpu_seconds).toBeCloseTo(7200, -1);
    expect(mine.total.memory_gib_seconds).toBeCloseTo(1800, -1);
    const diskGib = (64 * 1024) / 1024 ** 3;
    expect(mine.total.disk_gib_hours).toBeCloseTo(diskGib * 2, 6);
    expect(usage.json().total.vcpu_seconds).toBeGreaterThanOrEqual(mine.total.vcpu_seconds);
    expect(usage.json().buckets.length).toBeGreaterThanOrEqual(24);

    const csv = await t.request({
      method: 'GET',
      url: `/v1/projects/${DEFAULT_PROJECT}/usage?granularity=day`,
      headers: { accept: 'text/csv' },
    });
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe(
      'start,end,resource_type,resource_id,name,vcpu_seconds,memory_gib_seconds,disk_gib_hours,snapshot_gib_hours,network_rx_bytes,network_tx_bytes',
    );
    const row = lines.find((l) => l.includes(id))!.split(',');
    expect(row[4]).toBe('metered');
    expect(Number(row[5])).toBeCloseTo(7200, -1);

    const reversed = await t.request({
      method: 'GET',
      url: `/v1/projects/${DEFAULT_PROJECT}/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`,
    });
    expect(reversed.statusCode).toBe(400);
    expect(reversed.json()).toMatchObject({ code: 'invalid_range', field: 'query.from' });
  });
});
