import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertRule, WebhookPayload } from '@nqvm/api';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Collects webhook deliveries of alert events on loopback. */
async function receiver(): Promise<{ url: string; got: WebhookPayload[]; server: Server }> {
  const got: WebhookPayload[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      got.push(JSON.parse(body) as WebhookPayload);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, got, server };
}

describe.each(DB_KINDS)('alert rules (%s)', (kind) => {
  let t: TestApp;
  let host: StandinHost;
  let hook: Awaited<ReturnType<typeof receiver>>;
  let vmId: string;

  const rule = async (id: string) =>
    (await t.request({ method: 'GET', url: `/v1/alert-rules/${id}` })).json() as AlertRule;
  const create = async (body: Record<string, unknown>) => {
    const res = await t.request({ method: 'POST', url: '/v1/alert-rules', payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as AlertRule;
  };
  const alertEvents = (ruleId: string) =>
    hook.got.filter((p) => p.event.resource_type === 'alert' && p.event.detail.rule_id === ruleId);

  beforeAll(async () => {
    hook = await receiver();
    t = await startTestApp(kind, {
      MANAGER_RECONCILER_DISABLED: 'true',
      NQVM_ALERT_INTERVAL_S: '1',
      NQVM_HOST_HEARTBEAT_TIMEOUT_S: '3',
      NQVM_IMPORT_ALLOW_CIDRS: '127.0.0.1/32',
      NQVM_METRICS_SAMPLE_INTERVAL_S: '0',
    });
    host = await startStandinHost(t, (boot) => boot.answer(4000 + Math.floor(Math.random() * 1000)));
    await host.heartbeat([]);
    const images = await uploadStubImages(t);
    const made = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name: 'watched',
        vcpu: 1,
        mem_mib: 128,
        kernel_image_id: images.kernel,
        initrd_image_id: images.initrd,
        rootfs_image_id: images.rootfs,
      },
    });
    expect(made.statusCode, made.body).toBe(202);
    vmId = (made.json() as { id: string }).id;
    const up = await t.request({ method: 'GET', url: `/v1/vms/${vmId}/wait?state=running&timeout=60` });
    expect(up.json()).toMatchObject({ state: 'running' });
    const wh = await t.request({
      method: 'POST',
      url: '/v1/webhooks',
      payload: { url: hook.url, events: ['alert.*'] },
    });
    expect(wh.statusCode, wh.body).toBe(201);
  });
  afterAll(async () => {
    await host?.close();
    await t?.close();
    await new Promise((r) => hook?.server.close(r));
  });

  it('fires vm_crashed when the VMM is reported killed and resolves once the VM runs again, as events and deliveries', async () => {
    const r = await create({ name: 'crashes', kind: 'vm_crashed', vm_id: vmId });
    expect(r).toMatchObject({ kind: 'vm_crashed', vm_id: vmId, enabled: true, firing: [] });
    const exit = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${host.id}/vm-exits`,
      headers: { authorization: `Bearer ${host.secret}` },
      payload: { vm_id: vmId, exit_code: null, signal: 'SIGKILL', at: new Date().toISOString() },
    });
    expect(exit.statusCode, exit.body).toBe(200);
    const firing = await until('the rule to fire', async () => (await rule(r.id)).firing[0]);
    expect(firing).toMatchObject({ subject_type: 'vm', subject_id: vmId, subject_name: 'watched' });
    expect(firing.reason).toContain('SIGKILL');
    const fired = await until('the firing delivery', () => alertEvents(r.id)[0]);
    expect(fired.event).toMatchObject({
      action: 'firing',
      result: 'error',
      detail: { kind: 'vm_crashed', subject_id: vmId },
    });

    const started = await t.request({ method: 'POST', url: `/v1/vms/${vmId}/start` });
    expect(started.statusCode, started.body).toBe(202);
    await until('the rule to resolve', async () => ((await rule(r.id)).firing.length === 0 ? true : undefined));
    const resolved = await until('the resolved delivery', () => alertEvents(r.id)[1]);
    expect(resolved.event).toMatchObject({ action: 'resolved', result: 'ok', resource_id: fired.event.resource_id });
    expect((await t.request({ method: 'GET', url: `/v1/vms/${vmId}` })).json()).toMatchObject({ state: 'running' });
    expect(alertEvents(r.id)).toHaveLength(2);
    await t.request({ method: 'DELETE', url: `/v1/alert-rules/${r.id}` });
  });

  it('fires host_unreachable past the heartbeat timeout and resolves at the next heartbeat', async () => {
    const r = await create({ name: 'hosts', kind: 'host_unreachable', host_id: host.id });
    const firing = await until('the host to be unreachable', async () => (await rule(r.id)).firing[0]);
    expect(firing).toMatchObject({ subject_type: 'host', subject_id: host.id, subject_name: 'h1' });
    await host.heartbeat([{ id: vmId, state: 'running', pid: 4242 }]);
    await until('the rule to resolve', async () => ((await rule(r.id)).firing.length === 0 ? true : undefined));
    await until('both deliveries', () => (alertEvents(r.id).length === 2 ? true : undefined));
    expect(alertEvents(r.id).map((p) => p.event.action)).toEqual(['firing', 'resolved']);
    await t.request({ method: 'DELETE', url: `/v1/alert-rules/${r.id}` });
  });

  it('fires metric_above only when every sample over the duration is above the threshold, and resolves below it', async () => {
    const sample = (agoS: number, cpu: number) =>
      t.database.db.execute(sql`INSERT INTO vm_metrics (vm_id, at, resolution, samples, host_cpu_pct)
        VALUES (${vmId}, now() - make_interval(secs => ${agoS}), 'raw', 1, ${cpu})`);
    for (const ago of [50, 40, 30, 20, 10]) await sample(ago, 97);
    await sample(25, 50); // one sample under the threshold inside the window: not "for the whole duration"
    const r = await create({
      name: 'hot',
      kind: 'metric_above',
      vm_id: vmId,
      metric: 'host_cpu_percent',
      threshold: 90,
      duration_s: 30,
    });
    // Evaluations come every second: two pass with the low sample in the window.
    await new Promise((res) => setTimeout(res, 2500));
    expect((await rule(r.id)).firing).toEqual([]);
    await t.database.db.execute(sql`DELETE FROM vm_metrics WHERE vm_id = ${vmId} AND host_cpu_pct < 90`);
    const firing = await until('the rule to fire', async () => (await rule(r.id)).firing[0]);
    expect(firing.reason).toMatch(/host_cpu_percent above 90 for 30 s/);
    await sample(0, 12);
    await until('the rule to resolve', async () => ((await rule(r.id)).firing.length === 0 ? true : undefined));
    await t.request({ method: 'DELETE', url: `/v1/alert-rules/${r.id}` });
  });

  it('refuses a rule without what its kind needs, or naming what does not exist, with the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'm', kind: 'metric_above', metric: 'host_cpu_percent', threshold: 90 }, 'body.duration_s'],
      [{ name: 'm', kind: 'vm_crashed', threshold: 90 }, 'body.threshold'],
      [{ name: 'm', kind: 'host_unreachable', vm_id: vmId }, 'body.vm_id'],
      [{ name: 'm', kind: 'vm_crashed', vm_id: '00000000-0000-4000-8000-000000000000' }, 'body.vm_id'],
      [{ name: 'm', kind: 'host_unreachable', host_id: '00000000-0000-4000-8000-000000000000' }, 'body.host_id'],
      // null is no threshold (it was once read as 0: the validator coerced it in a union).
      [{ name: 'q', kind: 'quota_above', threshold: null }, 'body.threshold'],
    ];
    for (const [body, field] of cases) {
      const res = await t.request({ method: 'POST', url: '/v1/alert-rules', payload: body });
      expect(res.statusCode, JSON.stringify(body)).toBe(422);
      expect(res.json()).toMatchObject({ code: 'alert_rule_invalid', field });
    }
    const bad = await t.request({ method: 'POST', url: '/v1/alert-rules', payload: { name: 'm', kind: 'disk_full' } });
    expect(bad.json()).toMatchObject({ code: 'validation_failed', field: 'body.kind' });
    const missing = await t.request({ method: 'GET', url: '/v1/alert-rules/00000000-0000-4000-8000-000000000000' });
    expect(missing.json()).toMatchObject({ status: 404, code: 'alert_rule_not_found' });
    const r = await create({ name: 'toggle', kind: 'vm_crashed' });
    const off = await t.request({ method: 'PATCH', url: `/v1/alert-rules/${r.id}`, payload: { enabled: false } });
    expect(off.json()).toMatchObject({ enabled: false });
    // A rule narrowed to one VM is widened again with null.
    const one = await t.request({ method: 'PATCH', url: `/v1/alert-rules/${r.id}`, payload: { vm_id: vmId } });
    expect(one.json()).toMatchObject({ vm_id: vmId });
    const every = await t.request({ method: 'PATCH', url: `/v1/alert-rules/${r.id}`, payload: { vm_id: null } });
    expect(every.statusCode, every.body).toBe(200);
    expect(every.json()).toMatchObject({ vm_id: null });
    const list = (await t.request({ method: 'GET', url: '/v1/alert-rules' })).json() as { items: AlertRule[] };
    expect(list.items.map((x) => x.id)).toContain(r.id);
    expect((await t.request({ method: 'DELETE', url: `/v1/alert-rules/${r.id}` })).statusCode).toBe(204);
  });
});
