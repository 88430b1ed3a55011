import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

/** GET /v1/vms/:id/config reads back exactly what the machine, CPU and device PUTs stored. */
describe.each(DB_KINDS)('VM config read-back on %s', (kind) => {
  let t: TestApp;
  let vmId = '';

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    const ids: Record<string, string> = {};
    for (const k of ['kernel', 'initrd', 'rootfs']) {
      const res = await t.request({
        method: 'POST',
        url: `/v1/images/upload?name=cfg-${k}&kind=${k}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: Buffer.from(`${k} content`),
      });
      expect(res.statusCode, res.body).toBe(201);
      ids[k] = res.json().id;
    }
    // A host with vhost-vsock so the vsock PUT is accepted; its agent address answers nothing.
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
        capacity: { cpus: 2, memory_mib: 2048, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: true, tc: true },
        vms: [],
      },
    });
    expect(hb.statusCode).toBe(200);
    const vm = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name: 'cfg-vm',
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: ids.kernel,
        initrd_image_id: ids.initrd,
        rootfs_image_id: ids.rootfs,
        start: false,
      },
    });
    expect(vm.statusCode, vm.body).toBe(202);
    vmId = vm.json().id;
  });
  afterAll(async () => t.close());

  const getConfig = (id: string) => t.request({ method: 'GET', url: `/v1/vms/${id}/config` });

  it('shows the machine config and null devices before anything is set', async () => {
    const res = await getConfig(vmId);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      machine: { vcpu: 1, mem_mib: 256, smt: false, track_dirty_pages: false, huge_pages: 'None' },
      cpu: { template: 'None' },
      vsock: null,
      entropy: null,
      serial: null,
      logger: null,
      balloon: null,
    });
  });

  it('round-trips every PUT and the balloon PATCH', async () => {
    const put = async (path: string, payload: object, method: 'PUT' | 'PATCH' = 'PUT') => {
      const res = await t.request({ method, url: `/v1/vms/${vmId}/${path}`, payload });
      expect(res.statusCode, `${path}: ${res.body}`).toBe(200);
    };
    const entropy = { rate_limiter: { bandwidth: { size: 4096, refill_time: 100 } } };
    await put('machine-config', { vcpu: 2, mem_mib: 512, smt: true }, 'PATCH');
    await put('cpu-config', { template: 'T2' });
    await put('vsock', { guest_cid: 42 });
    await put('entropy', entropy);
    await put('serial', { serial_out_path: 'serial-out.log' });
    await put('logger', { level: 'Info' });
    await put('balloon', { amount_mib: 64, deflate_on_oom: true, stats_polling_interval_s: 5 });
    await put('balloon', { amount_mib: 128 }, 'PATCH');
    const res = await getConfig(vmId);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      machine: { vcpu: 2, mem_mib: 512, smt: true, track_dirty_pages: false, huge_pages: 'None' },
      cpu: { template: 'T2' },
      vsock: { guest_cid: 42 },
      entropy,
      serial: { serial_out_path: 'serial-out.log' },
      logger: { level: 'Info' },
      balloon: { amount_mib: 128, deflate_on_oom: true, stats_polling_interval_s: 5 },
    });
  });

  it('answers 404 for an unknown VM and 401 without credentials', async () => {
    const missing = await getConfig('00000000-0000-4000-8000-000000000000');
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/problem\+json/);
    const anon = await t.app.inject({ method: 'GET', url: `/v1/vms/${vmId}/config` });
    expect(anon.statusCode).toBe(401);
  });
});
