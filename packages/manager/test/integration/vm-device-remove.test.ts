import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

const DEVICES = ['vsock', 'entropy', 'serial', 'logger', 'balloon'] as const;
const SETTINGS: Record<(typeof DEVICES)[number], object> = {
  vsock: { guest_cid: 42 },
  entropy: { rate_limiter: { bandwidth: { size: 4096, refill_time: 100 } } },
  serial: { serial_out_path: 'serial-out.log' },
  logger: { level: 'Info' },
  balloon: { amount_mib: 64, deflate_on_oom: true, stats_polling_interval_s: 5 },
};

/**
 * DELETE of a VM's vsock, entropy, serial, logger and balloon devices: refused while the VM runs (they are built
 * into the VMM at boot), gone from GET /config once removed, and absent from the spec the agent gets at the next
 * boot. The agent is a small HTTP stand-in that records every boot spec.
 */
describe.each(DB_KINDS)('removing single-instance VM devices on %s', (kind) => {
  let t: TestApp;
  let host: StandinHost;
  const boots: Record<string, unknown>[] = [];
  let vmId = '';

  const call = (method: 'GET' | 'PUT' | 'DELETE' | 'POST', path: string, payload?: object) =>
    t.request({ method, url: `/v1/vms/${vmId}${path}`, ...(payload ? { payload } : {}) });
  const waitFor = async (state: string) => {
    const deadline = Date.now() + 20_000;
    let vm = (await call('GET', '')).json() as { state: string };
    while (vm.state !== state && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      vm = (await call('GET', '')).json();
    }
    expect(vm.state).toBe(state);
  };

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    host = await startStandinHost(t, (boot) => {
      boots.push(boot.spec);
      boot.answer(4242);
    });
    // The stand-in's own heartbeat reports no vhost-vsock; this host has it, so the vsock PUT is accepted.
    const hb = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${host.id}/heartbeat`,
      headers: { authorization: `Bearer ${host.secret}` },
      payload: {
        capacity: { cpus: 4, memory_mib: 4096, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: true, tc: true },
        vms: [],
      },
    });
    expect(hb.statusCode, hb.body).toBe(200);
    const ids = await uploadStubImages(t);
    const vm = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name: 'dev-remove',
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
  afterAll(async () => {
    await host?.close();
    await t.close();
  });

  it('boots with every device set; while it runs each DELETE answers 409 requires_stop naming the device', async () => {
    for (const d of DEVICES) {
      const put = await call('PUT', `/${d}`, SETTINGS[d]);
      expect(put.statusCode, `${d}: ${put.body}`).toBe(200);
    }
    expect((await call('POST', '/start')).statusCode).toBe(202);
    await waitFor('running');
    expect(boots).toHaveLength(1);
    for (const d of DEVICES) expect(boots[0]?.[d], d).toBeDefined();
    for (const d of DEVICES) {
      const res = await call('DELETE', `/${d}`);
      expect(res.statusCode, `${d}: ${res.body}`).toBe(409);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'requires_stop', field: d, state: 'running' });
      expect(res.json().detail).toContain(d);
    }
    const cfg = (await call('GET', '/config')).json();
    for (const d of DEVICES) expect(cfg[d], d).toEqual(d === 'vsock' ? { guest_cid: 42 } : SETTINGS[d]);
  });

  it('removes each device from the stopped VM one at a time: 204, an event each, null in GET /config', async () => {
    expect((await call('POST', '/stop')).statusCode).toBe(202);
    await waitFor('stopped');
    for (const [i, d] of DEVICES.entries()) {
      const res = await call('DELETE', `/${d}`);
      expect(res.statusCode, `${d}: ${res.body}`).toBe(204);
      const cfg = (await call('GET', '/config')).json();
      for (const [j, other] of DEVICES.entries())
        expect(cfg[other] === null, `${other} after removing ${d}`).toBe(j <= i);
    }
    const cfg = (await call('GET', '/config')).json();
    expect(cfg.machine).toMatchObject({ vcpu: 1, mem_mib: 256 });
    const events = await t.request({ method: 'GET', url: `/v1/events?resource_id=${vmId}&limit=100` });
    const items = events.json().items as { action: string; detail: Record<string, unknown> }[];
    for (const d of DEVICES) {
      const ev = items.find((e) => e.action === `${d}_remove`);
      expect(ev, `${d}_remove event`).toBeDefined();
      expect(ev?.detail[d]).toBeDefined();
    }
  });

  it('answers 404 device_not_set for a device that is not set, 404 for an unknown VM, 401 without credentials', async () => {
    for (const d of DEVICES) {
      const res = await call('DELETE', `/${d}`);
      expect(res.statusCode, `${d}: ${res.body}`).toBe(404);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.json()).toMatchObject({ code: 'device_not_set', field: d });
    }
    const missing = await t.request({ method: 'DELETE', url: '/v1/vms/00000000-0000-4000-8000-000000000000/entropy' });
    expect([missing.statusCode, missing.json().code]).toEqual([404, 'vm_not_found']);
    const anon = await t.app.inject({ method: 'DELETE', url: `/v1/vms/${vmId}/balloon` });
    expect(anon.statusCode).toBe(401);
  });

  it('boots next time without them: the spec sent to the agent carries none of the removed devices', async () => {
    expect((await call('POST', '/start')).statusCode).toBe(202);
    await waitFor('running');
    expect(boots).toHaveLength(2);
    for (const d of DEVICES) expect(boots[1], d).not.toHaveProperty(d);
    expect(boots[1]).toMatchObject({ vm_id: vmId, vcpu: 1, mem_mib: 256 });
  });
});
