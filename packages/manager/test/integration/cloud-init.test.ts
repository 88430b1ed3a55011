import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { type BootCall, type StandinHost, startStandinHost, uploadStubImages } from '../support/standin-agent.ts';

const USER_DATA = '#cloud-config\nusers:\n  - name: ada\n    ssh_authorized_keys: ["ssh-ed25519 AAAA ada"]\n';

/** user_data and meta_data given on VM create or in a template reach the host agent, which builds the seed drive. */
describe.each(DB_KINDS)('cloud-init data on VM create and templates, on %s', (kind) => {
  let t: TestApp;
  let host: StandinHost;
  let ids: Record<'kernel' | 'initrd' | 'rootfs', string>;
  const boots = new Map<string, BootCall>();

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    host = await startStandinHost(t, (boot) => {
      boots.set(boot.id, boot);
      boot.answer(4242);
    });
    expect((await host.heartbeat([])).statusCode).toBe(200);
    ids = await uploadStubImages(t);
  });
  afterAll(async () => {
    await host?.close();
    await t.close();
  });

  const guestOf = async (id: string) => {
    const deadline = Date.now() + 20_000;
    while (!boots.has(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return (boots.get(id)!.spec as { guest: Record<string, unknown> }).guest;
  };
  const vm = (name: string, extra: Record<string, unknown>) =>
    t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name,
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: ids.kernel,
        initrd_image_id: ids.initrd,
        rootfs_image_id: ids.rootfs,
        ...extra,
      },
    });

  it('passes user_data and meta_data of a created VM to its host agent', async () => {
    const res = await vm('ci-direct', { user_data: USER_DATA, meta_data: { zone: 'lab', rack: '4' } });
    expect(res.statusCode, res.body).toBe(202);
    expect((await guestOf(res.json().id)).cloud_init).toEqual({
      user_data: USER_DATA,
      meta_data: { zone: 'lab', rack: '4' },
    });
  });

  it('gives no seed to a VM without cloud-init data', async () => {
    const res = await vm('ci-none', {});
    expect((await guestOf(res.json().id)).cloud_init).toBeUndefined();
  });

  it('carries user_data from a template to the VMs made from it', async () => {
    const tpl = await t.request({
      method: 'POST',
      url: '/v1/templates',
      payload: {
        name: 'ci-template',
        spec: { vcpu: 1, mem_mib: 256, kernel_image_id: ids.kernel, rootfs_image_id: ids.rootfs, user_data: USER_DATA },
      },
    });
    expect(tpl.statusCode, tpl.body).toBe(201);
    expect(tpl.json().spec.user_data).toBe(USER_DATA);
    const made = await t.request({
      method: 'POST',
      url: `/v1/templates/${tpl.json().id}/instantiate`,
      payload: { name: 'ci-from-template' },
    });
    expect(made.statusCode, made.body).toBe(202);
    expect((await guestOf(made.json().id)).cloud_init).toEqual({ user_data: USER_DATA });
  });

  it.each([
    ['user_data over 64 KiB', { user_data: 'x'.repeat(65537) }, 'body.user_data'],
    ['an empty user_data', { user_data: '' }, 'body.user_data'],
    ['a meta_data key with a slash', { meta_data: { 'a/b': 'x' } }, 'body.meta_data'],
    ['a nested meta_data value', { meta_data: { a: { b: 1 } } }, 'body.meta_data.a'],
  ])('refuses %s with 400 naming the field', async (_what, extra, field) => {
    const res = await vm('ci-bad', extra);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'validation_failed' });
    expect(res.json().field).toContain(field);
  });
});
