import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

/**
 * Cloning a stopped VM that never booted: it has no disk on its host yet, so the clone is an ordinary create
 * from the same spec (a fresh copy of the same base image), not a disk copy the agent could not make.
 * The agent is a small HTTP stand-in that records what the manager asks of it.
 */
describe.each(DB_KINDS)('clone of a never-booted VM, on %s', (kind) => {
  let t: TestApp;
  let host: StandinHost;

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    host = await startStandinHost(t, (boot) => boot.answer(777));
    const hb = await host.heartbeat([]);
    expect(hb.statusCode).toBe(200);
  });
  afterAll(async () => {
    await host?.close();
    await t.close();
  });

  it('creates the clone from the same spec and boots it; the source stays stopped', async () => {
    const ids = await uploadStubImages(t);
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
    expect(host.calls).toContain(`POST /agent/v1/vms/${cloneId}/boot`);
    expect(host.calls.some((l) => l.includes('/clone'))).toBe(false);
    expect((await t.request({ method: 'GET', url: `/v1/vms/${src.json().id}` })).json().state).toBe('stopped');
  });
});
