import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

/** VM API behaviour that needs no running VMM: validation, placement errors, state-machine refusals. */
describe.each(DB_KINDS)('VM API on %s', (kind) => {
  let t: TestApp;
  const ids: Record<string, string> = {};
  let hostId = '';

  async function image(kindName: string, name: string) {
    const res = await t.request({
      method: 'POST',
      url: `/v1/images/upload?name=${name}&kind=${kindName}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from(`${name} content`),
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
    ids.kernel = await image('kernel', 'k1');
    ids.initrd = await image('initrd', 'i1');
    ids.rootfs = await image('rootfs', 'r1');
    // A host that registered and reported capacity; its agent address answers nothing (port 9 on loopback).
    const reg = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name: 'h1', addr: 'http://127.0.0.1:9' },
    });
    hostId = reg.json().id;
    const hb = await t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${hostId}/heartbeat`,
      headers: { authorization: `Bearer ${reg.json().secret}` },
      payload: {
        capacity: { cpus: 2, memory_mib: 2048, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
        capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
        vms: [],
      },
    });
    expect(hb.statusCode).toBe(200);
  });
  afterAll(async () => t.close());

  const base = () => ({
    name: `vm-${Math.random().toString(36).slice(2, 8)}`,
    vcpu: 1,
    mem_mib: 256,
    kernel_image_id: ids.kernel,
    initrd_image_id: ids.initrd,
    rootfs_image_id: ids.rootfs,
  });

  it.each([
    [{ vcpu: 0 }, 'body.vcpu'],
    [{ vcpu: 33 }, 'body.vcpu'],
    [{ mem_mib: 64 }, 'body.mem_mib'],
    [{ name: 'bad name!' }, 'body.name'],
    [{ vmm: 'xen' }, 'body.vmm'],
    [{ mac: 'zz:00:00:00:00:00' }, 'body.mac'],
    [{ surprise: 1 }, 'body.surprise'],
    [{ env: { '1BAD': 'x' } }, 'body.env.1BAD'],
  ])('refuses %j with a 400 naming %s and creates nothing', async (patch, field) => {
    const res = await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), ...patch } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    expect(res.json().field).toBe(field);
    expect((await t.request({ method: 'GET', url: '/v1/vms' })).json().items).toHaveLength(0);
  });

  it('takes images by name, name:tag and name@version, and answers a wrong reference naming its field', async () => {
    const upload = async (tag: string) =>
      (
        await t.request({
          method: 'POST',
          url: `/v1/images/upload?name=named-root&kind=rootfs&tag=${tag}`,
          headers: { 'content-type': 'application/octet-stream' },
          payload: Buffer.from(`named ${tag}`),
        })
      ).json().id as string;
    const v1 = await upload('one');
    const v2 = await upload('two');
    const { kernel_image_id: _k, initrd_image_id: _i, rootfs_image_id: _r, ...rest } = base();
    const create = (refs: Record<string, string>) =>
      t.request({
        method: 'POST',
        url: '/v1/vms',
        payload: { ...rest, name: `ref-${Math.random().toString(36).slice(2, 8)}`, start: false, ...refs },
      });
    for (const [ref, id] of [
      ['named-root', v2],
      ['named-root:latest', v2],
      ['named-root:one', v1],
      ['named-root@1', v1],
      ['named-root@2', v2],
    ] as const) {
      const res = await create({ kernel_image: 'k1', initrd_image: 'i1:latest', rootfs_image: ref });
      expect(res.statusCode, `${ref}: ${res.body}`).toBe(202);
      expect(res.json()).toMatchObject({
        kernel_image_id: ids.kernel,
        initrd_image_id: ids.initrd,
        rootfs_image_id: id,
      });
    }
    const mixed = await create({ kernel_image_id: ids.kernel as string, rootfs_image: 'named-root:two' });
    expect(mixed.json()).toMatchObject({ rootfs_image_id: v2, initrd_image_id: null });
    const before = (await t.request({ method: 'GET', url: '/v1/vms?limit=500' })).json().items.length;
    for (const [refs, status, code, field] of [
      [{ kernel_image: 'k1', rootfs_image: 'named-root:three' }, 404, 'image_not_found', 'body.rootfs_image'],
      [{ kernel_image: 'k1', rootfs_image: 'named-root@9' }, 404, 'image_not_found', 'body.rootfs_image'],
      [{ kernel_image: 'nope', rootfs_image: 'named-root' }, 404, 'image_not_found', 'body.kernel_image'],
      [{ kernel_image: 'k1', rootfs_image: 'Bad ref!' }, 400, 'validation_failed', 'body.rootfs_image'],
      [
        { kernel_image: 'k1', rootfs_image: 'named-root', rootfs_image_id: v1 },
        400,
        'image_ref_conflict',
        'body.rootfs_image',
      ],
      [{ kernel_image: 'k1' }, 400, 'image_required', 'body.rootfs_image'],
      [{ kernel_image: 'named-root', rootfs_image: 'named-root' }, 422, 'wrong_image_kind', 'body.kernel_image'],
    ] as const) {
      const res = await create(refs as Record<string, string>);
      expect(res.json(), JSON.stringify(refs)).toMatchObject({ status, code, field });
    }
    expect((await t.request({ method: 'GET', url: '/v1/vms?limit=500' })).json().items).toHaveLength(before);
  });

  it('refuses unknown images, the wrong kind of image and a VMM no host runs, naming the field', async () => {
    const unknown = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: { ...base(), kernel_image_id: '00000000-0000-4000-8000-000000000000' },
    });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json()).toMatchObject({ code: 'unknown_image', field: 'body.kernel_image_id' });
    const wrong = await t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: { ...base(), kernel_image_id: ids.rootfs },
    });
    expect(wrong.json()).toMatchObject({ code: 'wrong_image_kind', field: 'body.kernel_image_id' });
    const fc = await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), vmm: 'firecracker' } });
    expect(fc.statusCode).toBe(422);
    expect(fc.json()).toMatchObject({ code: 'vmm_unavailable', field: 'body.vmm' });
  });

  it('says why nothing fits when the VM is larger than any host', async () => {
    const res = await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), mem_mib: 4096 } });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('no_capacity');
    expect(res.json().hosts.h1).toMatch(/not enough memory/);
  });

  it('creates a stopped VM with an address, refuses a duplicate name, and guards the state machine', async () => {
    const spec = { ...base(), start: false, tags: ['web'], owner: 'alice', environment: 'dev' };
    const created = await t.request({ method: 'POST', url: '/v1/vms', payload: spec });
    expect(created.statusCode).toBe(202);
    const vm = created.json();
    expect(vm).toMatchObject({ state: 'stopped', host_id: hostId, owner: 'alice' });
    expect(vm.nics[0].ip).toMatch(/^10\.88\.0\.\d+\/24$/);
    expect(vm.nics[0].mac).toMatch(/^02:/);

    const dup = await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), name: spec.name } });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ code: 'vm_name_taken', field: 'body.name' });

    for (const action of ['pause', 'resume', 'stop', 'ctrl-alt-del']) {
      const res = await t.request({ method: 'POST', url: `/v1/vms/${vm.id}/${action}` });
      expect(res.statusCode, action).toBe(409);
      expect(res.json()).toMatchObject({ code: 'invalid_transition', state: 'stopped' });
    }

    const list = await t.request({ method: 'GET', url: '/v1/vms?tag=web&owner=alice&state=stopped' });
    expect(list.json().items.map((v: { id: string }) => v.id)).toEqual([vm.id]);
    const none = await t.request({ method: 'GET', url: '/v1/vms?environment=prod' });
    expect(none.json().items).toHaveLength(0);
  });

  it('a boot on an unreachable host ends in error with the reason, recorded as an event', async () => {
    const created = await t.request({ method: 'POST', url: '/v1/vms', payload: base() });
    expect(created.json().state).toBe('creating');
    const waited = await t.request({ method: 'GET', url: `/v1/vms/${created.json().id}/wait?state=error&timeout=30` });
    expect(waited.statusCode).toBe(200);
    expect(waited.json().last_error).toMatch(/host agent unreachable/);
    const ev = await t.request({ method: 'GET', url: `/v1/events?resource_id=${created.json().id}&result=error` });
    expect(ev.json().items[0]).toMatchObject({ action: 'boot', result: 'error' });
    const timeout = await t.request({
      method: 'GET',
      url: `/v1/vms/${created.json().id}/wait?state=running&timeout=1`,
    });
    expect(timeout.statusCode).toBe(408);
  });

  it('paginates with a cursor and sorts by name', async () => {
    for (let i = 0; i < 5; i++)
      await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), name: `page-${i}`, start: false } });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await t.request({
        method: 'GET',
        url: `/v1/vms?search=page-&sort=name&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      });
      seen.push(...res.json().items.map((v: { name: string }) => v.name));
      cursor = res.json().next_cursor;
    } while (cursor);
    expect(seen).toEqual(['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const bad = await t.request({ method: 'GET', url: '/v1/vms?cursor=garbage' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().field).toBe('query.cursor');
  });

  it('allocates distinct addresses and MACs under concurrent creates', async () => {
    const res = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        t.request({
          method: 'POST',
          url: '/v1/vms',
          payload: { ...base(), name: `conc-${i}`, start: false, vcpu: 1, mem_mib: 128 },
        }),
      ),
    );
    const ok = res.filter((r) => r.statusCode === 202).map((r) => r.json());
    expect(ok).toHaveLength(8);
    expect(new Set(ok.map((v) => v.nics[0].ip)).size).toBe(8);
    expect(new Set(ok.map((v) => v.nics[0].mac)).size).toBe(8);
  });

  it('bulk actions answer per VM: refusals carry the code, unknown ids say not found', async () => {
    const a = (await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), start: false } })).json();
    const missing = '00000000-0000-4000-8000-0000000000aa';
    const res = await t.request({
      method: 'POST',
      url: '/v1/vms/actions',
      payload: { ids: [a.id, missing], action: 'pause' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().results).toEqual([
      { id: a.id, ok: false, code: 'invalid_transition', detail: expect.stringMatching(/stopped/) },
      { id: missing, ok: false, code: 'vm_not_found', detail: expect.any(String) },
    ]);
    const bad = await t.request({ method: 'POST', url: '/v1/vms/actions', payload: { ids: [], action: 'pause' } });
    expect(bad.json().field).toBe('body.ids');
  });

  it('renames and relabels a VM in place, refusing a taken name, an empty change and bad tags by field', async () => {
    const a = (await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), start: false } })).json();
    const b = (await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), start: false } })).json();
    const patch = (id: string, payload: Record<string, unknown>) =>
      t.request({ method: 'PATCH', url: `/v1/vms/${id}`, payload });
    const name = `renamed-${a.name}`;
    const ok = await patch(a.id, {
      name,
      tags: ['blue', 'team:db'],
      owner: 'bob',
      environment: 'prod',
      description: 'db',
    });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ id: a.id, name, tags: ['blue', 'team:db'], owner: 'bob', environment: 'prod' });
    expect((await t.request({ method: 'GET', url: `/v1/vms/${a.id}` })).json()).toMatchObject({ name, owner: 'bob' });
    const events = await t.request({ method: 'GET', url: `/v1/events?resource_id=${a.id}` });
    expect(events.json().items[0]).toMatchObject({ action: 'update', detail: { renamed_from: a.name } });

    const taken = await patch(b.id, { name });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ code: 'vm_name_taken', field: 'body.name' });
    expect((await patch(b.id, {})).statusCode).toBe(400);
    const badTag = await patch(b.id, { tags: ['no spaces'] });
    expect(badTag.statusCode).toBe(400);
    expect(badTag.json().errors[0].field).toMatch(/tags/);
    expect((await patch('00000000-0000-4000-8000-000000000000', { owner: 'x' })).statusCode).toBe(404);
  });

  it('deleting a VM frees its address', async () => {
    const a = (await t.request({ method: 'POST', url: '/v1/vms', payload: { ...base(), start: false } })).json();
    const del = await t.request({ method: 'DELETE', url: `/v1/vms/${a.id}` });
    expect(del.statusCode).toBe(202);
    expect(del.json().state).toBe('deleting');
    // The agent of this host is unreachable, so the delete ends in error with the reason — nothing is lost silently.
    const w = await t.request({ method: 'GET', url: `/v1/vms/${a.id}/wait?state=error&timeout=30` });
    expect(w.json().last_error).toMatch(/delete failed/);
  });
});
