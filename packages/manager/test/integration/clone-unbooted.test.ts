import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, JOIN_TOKEN, startTestApp, type TestApp } from '../support/harness.ts';

/**
 * Cloning a stopped VM that never booted: it has no disk on its host yet, so the clone is an ordinary create
 * from the same spec (a fresh copy of the same base image), not a disk copy the agent could not make.
 * The agent is a small HTTP stand-in that records what the manager asks of it.
 */
describe.each(DB_KINDS)('clone of a never-booted VM, on %s', (kind) => {
  let t: TestApp;
  const calls: string[] = [];
  const agent = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    calls.push(`${req.method} ${req.url}`);
    const m = /^\/agent\/v1\/vms\/([0-9a-f-]{36})\/boot$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"code":"not_found"}');
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ id: m[1], state: 'running', pid: 777, booted_at: new Date().toISOString() }));
  });

  beforeAll(async () => {
    await new Promise<void>((r) => agent.listen(0, '127.0.0.1', r));
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: {
        join_token: JOIN_TOKEN,
        name: 'h1',
        addr: `http://127.0.0.1:${(agent.address() as AddressInfo).port}`,
      },
    });
    const hb = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${reg.json().id}/heartbeat`,
      headers: { authorization: `Bearer ${reg.json().secret}` },
      payload: {
        capacity: { cpus: 4, memory_mib: 4096, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
    });
    expect(hb.statusCode).toBe(200);
  });
  afterAll(async () => {
    await t.close();
    await new Promise((r) => agent.close(r));
  });

  it('creates the clone from the same spec and boots it; the source stays stopped', async () => {
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
    const src = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name: 'never-booted',
        vcpu: 2,
        mem_mib: 384,
        kernel_image_id: ids.kernel,
        initrd_image_id: ids.initrd,
        rootfs_image_id: ids.rootfs,
        start: false,
      },
    });
    expect(src.statusCode, src.body).toBe(202);
    expect(src.json().state).toBe('stopped');

    const c = await t.request({ method: 'POST', url: `/v1/vms/${src.json().id}/clone`, payload: { name: 'copy' } });
    expect(c.statusCode, c.body).toBe(202);
    const cloneId = c.json().id as string;
    const deadline = Date.now() + 20_000;
    let clone = c.json() as { state: string; vcpu: number; mem_mib: number };
    while (clone.state !== 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      clone = (await t.request({ method: 'GET', url: `/v1/vms/${cloneId}` })).json();
    }
    expect(clone).toMatchObject({ state: 'running', vcpu: 2, mem_mib: 384 });
    expect(calls).toContain(`POST /agent/v1/vms/${cloneId}/boot`);
    expect(calls.some((l) => l.includes('/clone'))).toBe(false);
    expect((await t.request({ method: 'GET', url: `/v1/vms/${src.json().id}` })).json().state).toBe('stopped');
  });
});
