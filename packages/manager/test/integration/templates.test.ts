import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

describe.each(DB_KINDS)('templates on %s', (kind) => {
  let t: TestApp;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestApp(kind);
    for (const [name, k] of [
      ['tpl-kernel', 'kernel'],
      ['tpl-initrd', 'initrd'],
      ['tpl-rootfs', 'rootfs'],
      ['tpl-data', 'volume'],
    ] as const) {
      const res = await t.request({
        method: 'POST',
        url: `/v1/images/upload?name=${name}&kind=${k}`,
        headers: { 'content-type': 'application/octet-stream' },
        payload: randomBytes(64),
      });
      ids[k] = res.json().id;
    }
  });
  afterAll(async () => t.close());

  const spec = (over: Record<string, unknown> = {}) => ({
    vcpu: 2,
    mem_mib: 512,
    kernel_image_id: ids.kernel,
    initrd_image_id: ids.initrd,
    rootfs_image_id: ids.rootfs,
    boot_args: 'console=ttyS0',
    drives: [{ image_id: ids.volume, read_only: true }, { size_mib: 64 }],
    nics: [{ network: 'default' }],
    tags: ['web'],
    metadata: { team: 'a' },
    ...over,
  });
  const post = (payload: unknown) => t.request({ method: 'POST', url: '/v1/templates', payload: payload as object });

  it('creates, reads, replaces, lists and deletes a template, defaulting vmm to qemu', async () => {
    const created = await post({ name: 'web', description: 'web tier', spec: spec() });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'web', description: 'web tier', spec: { vmm: 'qemu', vcpu: 2 } });
    const id = created.json().id as string;
    expect((await t.request({ method: 'GET', url: `/v1/templates/${id}` })).json().spec.drives).toHaveLength(2);
    const replaced = await t.request({
      method: 'PUT',
      url: `/v1/templates/${id}`,
      payload: { name: 'web2', spec: spec({ vcpu: 4, vmm: 'firecracker', drives: [] }) },
    });
    expect(replaced.statusCode).toBe(200);
    expect(replaced.json()).toMatchObject({ name: 'web2', description: '', spec: { vcpu: 4, vmm: 'firecracker' } });
    const list = await t.request({ method: 'GET', url: '/v1/templates?limit=1' });
    expect(list.json()).toMatchObject({ items: [{ name: 'web2' }], next_cursor: null });
    expect((await t.request({ method: 'DELETE', url: `/v1/templates/${id}` })).statusCode).toBe(204);
    expect((await t.request({ method: 'GET', url: `/v1/templates/${id}` })).statusCode).toBe(404);
    const ev = await t.request({ method: 'GET', url: `/v1/events?resource_type=template&resource_id=${id}` });
    expect(ev.json().items.map((e: { action: string }) => e.action)).toEqual(['delete', 'update', 'create']);
  });

  it('refuses images of the wrong kind, missing images and bad drives, naming the field', async () => {
    const cases: [Record<string, unknown>, number, string, string][] = [
      [{ kernel_image_id: ids.rootfs }, 422, 'image_wrong_kind', 'body.spec.kernel_image_id'],
      [{ rootfs_image_id: ids.kernel }, 422, 'image_wrong_kind', 'body.spec.rootfs_image_id'],
      [{ initrd_image_id: ids.volume }, 422, 'image_wrong_kind', 'body.spec.initrd_image_id'],
      [{ drives: [{ image_id: ids.kernel }] }, 422, 'image_wrong_kind', 'body.spec.drives.0.image_id'],
      [{ kernel_image_id: '00000000-0000-4000-8000-000000000000' }, 422, 'unknown_image', 'body.spec.kernel_image_id'],
      [{ drives: [{ image_id: ids.volume, size_mib: 10 }] }, 400, 'invalid_drive', 'body.spec.drives.0'],
      [{ drives: [{}] }, 400, 'invalid_drive', 'body.spec.drives.0'],
    ];
    for (const [over, status, code, field] of cases) {
      const res = await post({ name: 'bad', spec: spec(over) });
      expect(res.statusCode, field).toBe(status);
      expect(res.json(), field).toMatchObject({ code, field });
    }
    expect((await t.request({ method: 'GET', url: '/v1/templates' })).json().items).toEqual([]);
  });

  it('keeps names unique (409 on body.name) and an image in use cannot be deleted', async () => {
    const a = await post({ name: 'uses-kernel', spec: spec() });
    expect(a.statusCode).toBe(201);
    const dup = await post({ name: 'uses-kernel', spec: spec() });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ code: 'template_name_taken', field: 'body.name' });
    const del = await t.request({ method: 'DELETE', url: `/v1/images/${ids.kernel}` });
    expect(del.statusCode).toBe(409);
    expect(del.json()).toMatchObject({ code: 'image_in_use', used_by: ['template:uses-kernel'] });
    expect((await t.request({ method: 'DELETE', url: `/v1/templates/${a.json().id}` })).statusCode).toBe(204);
    expect((await t.request({ method: 'DELETE', url: `/v1/images/${ids.kernel}` })).statusCode).toBe(204);
  });
});
