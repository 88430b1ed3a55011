import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';
import { Terminal } from './support/terminal.ts';

interface Vm {
  id: string;
  guest_ip: string | null;
  guest_ready_at: string | null;
}

const MMDS = '169.254.169.254';
const GATEWAY = '10.218.0.1';
const DATA_A = { latest: { 'meta-data': { 'instance-id': 'i-aaaa1111', 'local-hostname': 'mmds-a', zone: 'z-a' } } };
const DATA_B = { latest: { 'meta-data': { 'instance-id': 'i-bbbb2222', 'local-hostname': 'mmds-b', zone: 'z-b' } } };

interface HttpAnswer {
  status: number;
  body: string;
  raw: string;
}

/** Issue 5 from inside the guest: the agent's metadata service as a guest sees it (busybox nc, raw HTTP). */
describe('MMDS from inside real guests: V2 tokens, JSON and IMDS forms, per-VM data, no spoofing', () => {
  let s: Stack;
  let a: Vm;
  let b: Vm;
  let ta: Terminal;
  let tb: Terminal;

  /** One HTTP/1.0 request from the guest to the metadata address; the server closes, so nc ends. */
  const http = async (t: Terminal, request: string[], extra = ''): Promise<HttpAnswer> => {
    const text = [...request, '', ''].join('\\r\\n');
    const raw = await t.run(`${extra}printf '${text}' | nc -w 5 ${MMDS} 80`, 30_000);
    const status = Number(/^HTTP\/1\.1 (\d{3})/m.exec(raw)?.[1] ?? 0);
    const at = raw.indexOf('\n\n');
    return { status, body: at < 0 ? '' : raw.slice(at + 2).trim(), raw };
  };
  const token = async (t: Terminal, ttl: number) => {
    const r = await http(t, ['PUT /latest/api/token HTTP/1.0', `X-metadata-token-ttl-seconds: ${ttl}`]);
    expect(r.status, r.raw).toBe(200);
    expect(r.body).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    return r.body;
  };

  beforeAll(async () => {
    s = await startStack(TEST_NETWORKS.mmdsE2e);
    const create = (name: string) =>
      s.api<Vm>('POST', '/v1/vms', {
        name,
        vcpu: 1,
        mem_mib: 256,
        kernel_image_id: s.images.kernel,
        initrd_image_id: s.images.initrd,
        rootfs_image_id: s.images.rootfs,
        username: 'root',
        password: 'metadata-pw-5',
      });
    const created = await Promise.all([create('mmds-a'), create('mmds-b')]);
    for (const c of created) expect(c.status, JSON.stringify(c.body)).toBe(202);
    [a, b] = (await Promise.all(
      created.map((c) =>
        until(
          `${c.body.id} guest ready`,
          async () => {
            const r = (await s.api<Vm>('GET', `/v1/vms/${c.body.id}`)).body;
            return r.guest_ready_at ? r : undefined;
          },
          240_000,
        ),
      ),
    )) as [Vm, Vm];
    const auth = { authorization: `Bearer ${s.token}` };
    const wsBase = s.base.replace(/^http/, 'ws');
    ta = await Terminal.open(`${wsBase}/v1/vms/${a.id}/shell/ws`, auth);
    tb = await Terminal.open(`${wsBase}/v1/vms/${b.id}/shell/ws`, auth);
    await Promise.all([ta.login('root', 'metadata-pw-5'), tb.login('root', 'metadata-pw-5')]);
  });
  afterAll(async () => {
    ta?.close();
    tb?.close();
    await s?.close();
  });

  it('V1: a plain GET from the guest returns its own data; switching to V2 live refuses it with 401', async () => {
    for (const [vm, data] of [
      [a, DATA_A],
      [b, DATA_B],
    ] as const) {
      const cfg = await s.api('PUT', `/v1/vms/${vm.id}/mmds/config`, { version: 'V1', network_interfaces: ['eth0'] });
      expect(cfg.status, JSON.stringify(cfg.body)).toBe(200);
      expect((await s.api('PUT', `/v1/vms/${vm.id}/mmds`, data)).status).toBe(200);
    }
    const v1 = await http(tb, ['GET /latest/meta-data/instance-id HTTP/1.0']);
    expect([v1.status, v1.body]).toEqual([200, 'i-bbbb2222']);
    for (const vm of [a, b])
      expect(
        (await s.api('PUT', `/v1/vms/${vm.id}/mmds/config`, { version: 'V2', network_interfaces: ['eth0'] })).status,
      ).toBe(200);
    const refused = await http(tb, ['GET /latest/meta-data/instance-id HTTP/1.0']);
    expect(refused.status, refused.raw).toBe(401);
    expect(refused.raw).not.toContain('i-bbbb2222');
  });

  it('V2: PUT a token with a TTL, then GET with it: JSON and IMDS text forms of this VM’s data', async () => {
    const t = await token(ta, 60);
    const json = await http(ta, [
      'GET /latest/meta-data HTTP/1.0',
      `X-metadata-token: ${t}`,
      'Accept: application/json',
    ]);
    expect(json.status, json.raw).toBe(200);
    expect(json.raw).toMatch(/content-type: application\/json/i);
    expect(JSON.parse(json.body)).toEqual(DATA_A.latest['meta-data']);
    const listing = await http(ta, ['GET /latest/meta-data HTTP/1.0', `X-metadata-token: ${t}`]);
    expect([listing.status, listing.body.split('\n')]).toEqual([200, ['instance-id', 'local-hostname', 'zone']]);
    const leaf = await http(ta, ['GET /latest/meta-data/local-hostname HTTP/1.0', `X-metadata-token: ${t}`]);
    expect([leaf.status, leaf.body]).toEqual([200, 'mmds-a']);
    const missing = await http(ta, ['GET /latest/meta-data/nope HTTP/1.0', `X-metadata-token: ${t}`]);
    expect(missing.status).toBe(404);
  });

  it('V2: no token, a made-up token, a bad TTL or an expired token are refused', async () => {
    const none = await http(ta, ['GET /latest/meta-data/instance-id HTTP/1.0', 'Accept: application/json']);
    expect(none.status, none.raw).toBe(401);
    const fake = await http(ta, ['GET /latest/meta-data/instance-id HTTP/1.0', 'X-metadata-token: made-up-token']);
    expect(fake.status).toBe(401);
    for (const ttl of ['0', '21601', 'x'])
      expect((await http(ta, ['PUT /latest/api/token HTTP/1.0', `X-metadata-token-ttl-seconds: ${ttl}`])).status).toBe(
        400,
      );
    expect((await http(ta, ['PUT /latest/api/token HTTP/1.0'])).status).toBe(400);
    const short = await token(ta, 1);
    await until(
      'the 1 s token to expire',
      async () =>
        (await http(ta, ['GET /latest/meta-data/instance-id HTTP/1.0', `X-metadata-token: ${short}`])).status === 401,
      30_000,
    );
  });

  it("VM B sees only B's data, and A's token is worthless in B", async () => {
    const tB = await token(tb, 60);
    const own = await http(tb, ['GET / HTTP/1.0', `X-metadata-token: ${tB}`, 'Accept: application/json']);
    expect(own.status, own.raw).toBe(200);
    expect(JSON.parse(own.body)).toEqual(DATA_B);
    expect(own.raw).not.toContain('i-aaaa1111');
    const tA = await token(ta, 60);
    const borrowed = await http(tb, ['GET /latest/meta-data/instance-id HTTP/1.0', `X-metadata-token: ${tA}`]);
    expect(borrowed.status).toBe(401);
    expect(borrowed.raw).not.toContain('i-aaaa1111');
  });

  it("B taking A's address as a secondary and asking from it does not get A's data", async () => {
    const aIp = a.guest_ip!;
    // Requests to the metadata address now leave B with A's address as their source.
    const spoof = `ip addr add ${aIp}/32 dev eth0; ip route replace ${MMDS}/32 via ${GATEWAY} dev eth0 src ${aIp}; `;
    try {
      const put = await http(tb, ['PUT /latest/api/token HTTP/1.0', 'X-metadata-token-ttl-seconds: 60'], spoof);
      expect(put.status, put.raw).toBe(0);
      const tA = await token(ta, 60);
      const get = await http(tb, ['GET /latest/meta-data/instance-id HTTP/1.0', `X-metadata-token: ${tA}`]);
      expect(get.status, get.raw).toBe(0);
      expect(get.raw).not.toContain('i-aaaa1111');
      expect(await tb.run(`ip -4 addr show dev eth0`)).toContain(aIp);
    } finally {
      await tb.run(`ip route del ${MMDS}/32; ip addr del ${aIp}/32 dev eth0`);
    }
    // A is unharmed by B's attempt, and B, honest again, still gets its own data.
    const tA = await token(ta, 60);
    expect((await http(ta, ['GET /latest/meta-data/instance-id HTTP/1.0', `X-metadata-token: ${tA}`])).body).toBe(
      'i-aaaa1111',
    );
    const tB = await token(tb, 60);
    expect((await http(tb, ['GET /latest/meta-data/instance-id HTTP/1.0', `X-metadata-token: ${tB}`])).body).toBe(
      'i-bbbb2222',
    );
  });
});
