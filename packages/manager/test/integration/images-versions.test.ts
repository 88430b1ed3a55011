import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

interface Img {
  id: string;
  name: string;
  version: number;
  tag: string | null;
  latest: boolean;
  sha256: string;
}

describe.each(DB_KINDS)('image versions on %s', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(async () => t.close());

  const upload = async (name: string, body: string, extra = '', imageKind = 'rootfs') => {
    const res = await t.request({
      method: 'POST',
      url: `/v1/images/upload?name=${name}&kind=${imageKind}${extra}`,
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from(body),
    });
    return res;
  };
  const get = async (id: string) => (await t.request({ method: 'GET', url: `/v1/images/${id}` })).json() as Img;
  const list = async (query: string) =>
    (await t.request({ method: 'GET', url: `/v1/images?${query}` })).json() as { items: Img[]; next_cursor: string };
  const kernel = async () => (await upload(`k-${Math.random().toString(36).slice(2, 8)}`, 'k', '', 'kernel')).json();

  it('numbers the imports of one name 1, 2, …; latest moves to each new version once it is ready', async () => {
    const v1 = (await upload('debian', 'one', '&tag=bookworm-1')).json() as Img;
    expect(v1).toMatchObject({ name: 'debian', version: 1, tag: 'bookworm-1', latest: true });
    const v2 = (await upload('debian', 'two')).json() as Img;
    expect(v2).toMatchObject({ name: 'debian', version: 2, tag: null, latest: true });
    expect((await get(v1.id)).latest).toBe(false);
    expect((await list('name=debian')).items.map((i) => [i.version, i.latest])).toEqual([
      [1, false],
      [2, true],
    ]);
    expect((await list('name=debian&latest=true')).items.map((i) => i.id)).toEqual([v2.id]);
    // Pages by name then version.
    const first = await list('name=debian&limit=1');
    expect(first.items.map((i) => i.version)).toEqual([1]);
    const second = await list(`name=debian&limit=1&cursor=${first.next_cursor}`);
    expect(second.items.map((i) => i.version)).toEqual([2]);
  });

  it('refuses a taken name:tag and a version of another kind with clear 409s', async () => {
    await upload('alpine', 'a1', '&tag=3.20');
    const again = await upload('alpine', 'a2', '&tag=3.20');
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'image_name_taken', field: 'body.tag' });
    const kernelVersion = await upload('alpine', 'k', '', 'kernel');
    expect(kernelVersion.statusCode).toBe(409);
    expect(kernelVersion.json()).toMatchObject({ code: 'image_kind_differs', field: 'body.kind' });
    const reserved = await upload('alpine', 'a3', '&tag=latest');
    expect(reserved.statusCode).toBe(400);
    expect(reserved.json()).toMatchObject({ code: 'validation_failed', field: 'query.tag' });
  });

  it('rolls latest back to an older version, records it, and a new import moves latest on again', async () => {
    const v1 = (await upload('svc', 's1')).json() as Img;
    const v2 = (await upload('svc', 's2')).json() as Img;
    const back = await t.request({ method: 'POST', url: `/v1/images/${v1.id}/rollback` });
    expect(back.statusCode, back.body).toBe(200);
    expect(back.json()).toMatchObject({ id: v1.id, version: 1, latest: true });
    expect((await get(v2.id)).latest).toBe(false);
    const ev = await t.request({ method: 'GET', url: `/v1/events?resource_id=${v1.id}&action=rollback` });
    expect(ev.json().items[0].detail).toMatchObject({ name: 'svc', version: 1, previous_version: 2 });
    const v3 = (await upload('svc', 's3')).json() as Img;
    expect(v3).toMatchObject({ version: 3, latest: true });
    expect((await get(v1.id)).latest).toBe(false);
  });

  it('refuses to delete a version a template uses, naming the template; deleting latest falls back to the newest left', async () => {
    const v1 = (await upload('app', 'p1')).json() as Img;
    const v2 = (await upload('app', 'p2')).json() as Img;
    const k = await kernel();
    const tpl = await t.request({
      method: 'POST',
      url: '/v1/templates',
      payload: { name: 'pinned-app', spec: { vcpu: 1, mem_mib: 128, kernel_image_id: k.id, rootfs_image_id: v1.id } },
    });
    expect(tpl.statusCode, tpl.body).toBe(201);
    const refused = await t.request({ method: 'DELETE', url: `/v1/images/${v1.id}` });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'image_in_use', used_by: ['template:pinned-app'] });
    expect(refused.json().detail).toMatch(/app version 1 is in use: template:pinned-app/);

    expect((await t.request({ method: 'DELETE', url: `/v1/images/${v2.id}` })).statusCode).toBe(204);
    expect((await get(v1.id)).latest).toBe(true);
  });

  it('renames every version of a name at once, refusing a name another image has', async () => {
    const v1 = (await upload('old-name', 'o1')).json() as Img;
    const v2 = (await upload('old-name', 'o2')).json() as Img;
    await upload('other-name', 'x');
    const taken = await t.request({ method: 'PATCH', url: `/v1/images/${v1.id}`, payload: { name: 'other-name' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json()).toMatchObject({ code: 'image_name_taken', field: 'body.name' });
    const ok = await t.request({ method: 'PATCH', url: `/v1/images/${v1.id}`, payload: { name: 'new-name' } });
    expect(ok.statusCode).toBe(200);
    expect((await get(v2.id)).name).toBe('new-name');
    expect((await list('name=new-name')).items.map((i) => [i.version, i.latest])).toEqual([
      [1, false],
      [2, true],
    ]);
  });
});
