import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';

const capacity = { cpus: 2, memory_mib: 4096, disk_free_bytes: 1e10, disk_total_bytes: 2e10 };
const capabilities = { vmm: ['qemu' as const], kvm: false, vsock: false, tc: true };

describe.each(DB_KINDS)('an agent that comes back on another URL (%s)', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true' });
  });
  afterAll(async () => t.close());

  const register = async (name: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/hosts/register',
      payload: { join_token: await t.joinToken(), name, addr: 'http://127.0.0.1:19090/' },
    });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string; secret: string };
  };
  const beat = (id: string, secret: string, addr?: string) =>
    t.app.inject({
      method: 'POST',
      url: `/v1/hosts/${id}/heartbeat`,
      headers: { authorization: `Bearer ${secret}` },
      payload: { capacity, capabilities, vms: [], ...(addr === undefined ? {} : { addr }) },
    });
  const addrOf = async (id: string) => (await t.request({ method: 'GET', url: `/v1/hosts/${id}` })).json().addr;
  const moves = async (id: string) =>
    (await t.request({ method: 'GET', url: `/v1/events?resource_id=${id}&action=addr_changed` })).json().items as {
      actor: string;
      detail: { from: string; to: string };
    }[];

  it('moves the host row to the URL its heartbeat carries, once, with an event', async () => {
    const { id, secret } = await register(`moving-${kind}`);
    expect(await addrOf(id)).toBe('http://127.0.0.1:19090');
    expect((await beat(id, secret)).statusCode).toBe(200);
    expect(await addrOf(id)).toBe('http://127.0.0.1:19090');
    expect((await beat(id, secret, 'http://127.0.0.1:19190/')).statusCode).toBe(200);
    expect(await addrOf(id)).toBe('http://127.0.0.1:19190');
    expect((await beat(id, secret, 'http://127.0.0.1:19190')).statusCode).toBe(200);
    const events = await moves(id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: `host:${id}`,
      detail: { from: 'http://127.0.0.1:19090', to: 'http://127.0.0.1:19190' },
    });
  });

  it('refuses a URL with a path, credentials, another scheme or shell text, and keeps the one it had', async () => {
    const { id, secret } = await register(`strict-${kind}`);
    const bad = [
      'http://127.0.0.1:19190/agent',
      'http://user:pw@127.0.0.1:19190',
      'file:///etc/passwd',
      'http://$(touch /tmp/MARK):1',
      'http://`id`:1',
      'http://127.0.0.1:1;rm -rf /',
      'http://[[[:1',
      'http://127.0.0.1:1?x=1',
      `http://${'a'.repeat(300)}`,
    ];
    for (const addr of bad) {
      const res = await beat(id, secret, addr);
      expect(res.statusCode, addr).toBe(400);
      expect(res.json().field ?? '', addr).toMatch(/addr/);
    }
    expect(await addrOf(id)).toBe('http://127.0.0.1:19090');
    expect(await moves(id)).toHaveLength(0);
  });

  it('lets only the host itself move its URL', async () => {
    const a = await register(`owner-a-${kind}`);
    const b = await register(`owner-b-${kind}`);
    expect((await beat(a.id, b.secret, 'http://127.0.0.1:1')).statusCode).toBe(401);
    expect(await addrOf(a.id)).toBe('http://127.0.0.1:19090');
  });
});
