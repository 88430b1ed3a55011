import { VM_STATES } from '@nqvm/api';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOLDING } from '../../src/features/vms/vms.repository.ts';
import { DB_KINDS, startTestApp, type TestApp } from '../support/harness.ts';
import { seedEvents } from '../support/seed.ts';

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}
interface VmItem {
  id: string;
  name: string;
  state: string;
  created_at: string;
  nics: { ip: string; mac: string }[];
}

/** Keyset lists rendered by the database, and NIC addresses from the pool, on both databases. */
describe.each(DB_KINDS)('lists and addresses on %s', (kind) => {
  let t: TestApp;
  const ids: Record<string, string> = {};
  const hosts: string[] = [];

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

  async function walk<T>(url: string): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = url.includes('?') ? '&' : '?';
      const res = await t.request({ method: 'GET', url: `${url}${cursor ? `${sep}cursor=${cursor}` : ''}` });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json() as Page<T>;
      out.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  }

  const create = (name: string) =>
    t.request({
      method: 'POST',
      url: '/v1/vms',
      payload: {
        name,
        vcpu: 1,
        mem_mib: 128,
        start: false,
        kernel_image_id: ids.kernel,
        rootfs_image_id: ids.rootfs,
      },
    });

  beforeAll(async () => {
    // A /27: 29 addresses for NICs (network, gateway and broadcast excluded), so the pool grows and runs dry.
    t = await startTestApp(kind, { MANAGER_RECONCILER_DISABLED: 'true', NQVM_NETWORK_CIDR: '10.77.0.0/27' });
    ids.kernel = await image('kernel', 'k1');
    ids.rootfs = await image('rootfs', 'r1');
    for (const name of ['h1', 'h2', 'h3']) {
      const reg = await t.app.inject({
        method: 'POST',
        url: '/v1/hosts/register',
        payload: { join_token: await t.joinToken(), name, addr: 'http://127.0.0.1:9' },
      });
      hosts.push(reg.json().id);
      await t.app.inject({
        method: 'POST',
        url: `/v1/hosts/${reg.json().id}/heartbeat`,
        headers: { authorization: `Bearer ${reg.json().secret}` },
        payload: {
          capacity: { cpus: 64, memory_mib: 65536, disk_free_bytes: 1e9, disk_total_bytes: 2e9 },
          capabilities: { vmm: ['qemu'], kvm: false, vsock: false, tc: true },
          vms: [],
        },
      });
    }
  });
  afterAll(async () => t.close());

  it('claims distinct addresses under concurrency, says network_full when the pool is dry, and reuses a freed one', async () => {
    const res = await Promise.all(Array.from({ length: 32 }, (_, i) => create(`pool-${i}`)));
    const ok = res.filter((r) => r.statusCode === 202).map((r) => r.json() as VmItem);
    const full = res.filter((r) => r.statusCode === 409).map((r) => r.json());
    expect(ok).toHaveLength(29);
    expect(full).toHaveLength(3);
    expect(full[0]).toMatchObject({ code: 'network_full', field: 'body.network' });
    const ips = ok.map((v) => v.nics[0]!.ip);
    expect(new Set(ips).size).toBe(29);
    expect(ips).not.toContain('10.77.0.1/27');
    expect(new Set(ok.map((v) => v.nics[0]!.mac)).size).toBe(29);

    // A NIC that goes gives its address back, whoever deletes the row.
    const gone = ok.find((v) => v.nics[0]!.ip === '10.77.0.9/27')!;
    await t.database.withSession((s) => s.query('DELETE FROM vms WHERE id = $1', [gone.id]));
    const again = await create('pool-again');
    expect(again.statusCode, again.body).toBe(202);
    expect(again.json().nics[0].ip).toBe('10.77.0.9/27');
  });

  it('walks every sort and filter in cursor pages that hold each VM once, in order, as GET shows it', async () => {
    // Seeded rows share created_at down to the microsecond in pairs: a millisecond cursor would skip some.
    await t.database.withSession(async (s) => {
      await s.query(
        `INSERT INTO vms (name, state, host_id, vmm, vcpu, mem_mib, kernel_image_id, rootfs_image_id, tags, owner,
           environment, guest_token_hash, guest_token_enc, created_at)
         SELECT 'seed-' || lpad(i::text, 3, '0'), (ARRAY['running','stopped','error'])[1 + i % 3],
           ($1::uuid[])[1 + i % 3], 'qemu', 1, 256, $2::uuid, $3::uuid, ARRAY['t' || (i % 2)], 'o' || (i % 2),
           'prod', md5(i::text), 'x', '2026-01-01T00:00:00.123456Z'::timestamptz + ((i / 2) || ' microseconds')::interval
         FROM generate_series(1, 45) AS i`,
        [hosts, ids.kernel, ids.rootfs],
      );
    });
    const all = (await walk<VmItem>('/v1/vms?limit=500')).filter((v) => v.name.startsWith('seed-'));
    expect(all).toHaveLength(45);
    for (const sort of ['name', '-name', 'created_at', '-created_at', 'state', '-state']) {
      for (const filter of ['', '&state=running', '&tag=t1', '&owner=o0', `&host_id=${hosts[1]}`, '&search=seed-01']) {
        const paged = await walk<VmItem>(`/v1/vms?limit=7&sort=${sort}${filter}`);
        const whole = (await t.request({ method: 'GET', url: `/v1/vms?limit=500&sort=${sort}${filter}` })).json()
          .items as VmItem[];
        expect(
          paged.map((v) => v.id),
          `${sort} ${filter}`,
        ).toEqual(whole.map((v) => v.id));
        expect(new Set(paged.map((v) => v.id)).size).toBe(paged.length);
      }
    }
    const byName = (await walk<VmItem>('/v1/vms?limit=7&sort=name&search=seed-')).map((v) => v.name);
    expect(byName).toEqual([...byName].sort());
    expect(byName).toHaveLength(45);
    const created = await walk<VmItem>('/v1/vms?limit=4&sort=-created_at&search=seed-');
    expect(created).toHaveLength(45);

    // An item of the list is the VM as GET /v1/vms/{id} shows it, NICs included.
    const withNic = (await walk<VmItem>('/v1/vms?limit=3')).find((v) => v.nics.length > 0)!;
    const one = await t.request({ method: 'GET', url: `/v1/vms/${withNic.id}` });
    expect(withNic).toEqual(one.json());
  });

  it('pages events newest first by id, each as the live stream would show it', async () => {
    const vm = (await t.request({ method: 'GET', url: '/v1/vms?limit=1' })).json().items[0] as VmItem;
    await seedEvents(t.database, 120, [vm.id]);
    const all = await walk<{ id: string; action: string; result: string }>('/v1/events?limit=500');
    const paged = await walk<{ id: string; action: string; result: string }>('/v1/events?limit=13');
    expect(paged).toEqual(all);
    const ids = paged.map((e) => BigInt(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0)));
    const errors = await walk<{ result: string }>('/v1/events?limit=9&result=error&resource_type=vm');
    expect(errors.length).toBeGreaterThanOrEqual(20);
    expect(errors.every((e) => e.result === 'error')).toBe(true);
  });

  it("pages a VM's snapshots newest first, ties on the creation time broken by id, each once", async () => {
    const vm = (await t.request({ method: 'GET', url: '/v1/vms?limit=1' })).json().items[0] as VmItem;
    // Seven rows, three of them saved in the same microsecond: the cursor must not skip or repeat any.
    await t.database.db.execute(sql`INSERT INTO snapshots
      (vm_id, name, snapshot_type, state, state_bytes, disk_bytes, source_spec, created_at)
      SELECT ${vm.id}, 'snap-' || n, 'Full', 'ready', n, n, '{}'::jsonb,
        timestamptz '2026-01-01 00:00:00.123456+00' + make_interval(secs => least(n, 4))
      FROM generate_series(1, 7) AS n`);
    const url = `/v1/vms/${vm.id}/snapshots`;
    const all = await walk<{ id: string; name: string; created_at: string }>(`${url}?limit=500`);
    expect(all).toHaveLength(7);
    const paged = await walk<{ id: string; name: string; created_at: string }>(`${url}?limit=2`);
    expect(paged).toEqual(all);
    const keys = paged.map((s) => `${s.created_at} ${s.id}`);
    expect(keys).toEqual([...keys].sort().reverse());
    const bad = await t.request({ method: 'GET', url: `${url}?cursor=nope` });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'invalid_cursor', field: 'query.cursor' });
  });

  it('pages hosts by name and join tokens newest first, each once, with the allocation each host holds', async () => {
    const hostsPaged = await walk<{ id: string; name: string; allocated: { vms: number } }>('/v1/hosts?limit=2');
    const hostsAll = await walk<{ id: string; name: string; allocated: { vms: number } }>('/v1/hosts?limit=500');
    expect(hostsPaged).toEqual(hostsAll);
    expect(hostsAll.map((h) => h.name)).toEqual(['h1', 'h2', 'h3']);
    // Five tokens made in the same microsecond: ties on the creation time are broken by id.
    await t.database.db.execute(sql`INSERT INTO host_join_tokens (token_hash, created_by, created_at, expires_at)
      SELECT 'tie-' || n, 'test', timestamptz '2026-01-01 00:00:00.123456+00', now() + interval '1 hour'
      FROM generate_series(1, 5) AS n`);
    const tokensPaged = await walk<{ id: string; created_at: string }>('/v1/join-tokens?limit=2');
    const tokensAll = await walk<{ id: string; created_at: string }>('/v1/join-tokens?limit=500');
    expect(tokensPaged).toEqual(tokensAll);
    expect(new Set(tokensAll.map((x) => x.id)).size).toBe(tokensAll.length);
    expect(tokensAll.length).toBeGreaterThanOrEqual(8);
    const keys = tokensAll.map((x) => `${x.created_at} ${x.id}`);
    expect(keys).toEqual([...keys].sort().reverse());
    for (const url of ['/v1/hosts?cursor=nope', '/v1/join-tokens?cursor=nope']) {
      const bad = await t.request({ method: 'GET', url });
      expect(bad.statusCode).toBe(400);
      expect(bad.json()).toMatchObject({ code: 'invalid_cursor', field: 'query.cursor' });
    }
  });

  it('keeps what each host holds current through creates, state and host changes and deletes, as a full sum says', async () => {
    const holds = await t.database.withSession((s) =>
      s.query<{ state: string; holds: boolean }>(
        'SELECT s AS state, nqvm_vm_holds(s) AS holds FROM unnest($1::text[]) s',
        [VM_STATES],
      ),
    );
    expect(holds.filter((h) => h.holds).map((h) => h.state)).toEqual(VM_STATES.filter((s) => HOLDING.includes(s)));
    await t.database.withSession(async (s) => {
      // As the state machine writes it (the guard of migration 0010 refuses other state writes).
      await s.exec(`BEGIN; SET LOCAL nqvm.vm_state_change = 'on';
        UPDATE vms SET state = 'running' WHERE name LIKE 'seed-00%'; COMMIT`);
      await s.query(`UPDATE vms SET host_id = $1, vcpu = 3 WHERE name LIKE 'seed-01%'`, [hosts[2]]);
      await s.query(`DELETE FROM vms WHERE name LIKE 'seed-02%'`);
    });
    const [counted, summed] = await t.database.withSession(async (s) => [
      await s.query(
        'SELECT host_id::text, vcpu::int, mem_mib::int, vms::int FROM host_allocations WHERE vms > 0 ORDER BY 1',
      ),
      await s.query(
        `SELECT host_id::text, coalesce(sum(vcpu) FILTER (WHERE nqvm_vm_holds(state)), 0)::int AS vcpu,
           coalesce(sum(mem_mib) FILTER (WHERE nqvm_vm_holds(state)), 0)::int AS mem_mib, count(*)::int AS vms
         FROM vms WHERE host_id IS NOT NULL GROUP BY host_id ORDER BY 1`,
      ),
    ]);
    expect(counted).toEqual(summed);
    const listed = (await t.request({ method: 'GET', url: '/v1/hosts' })).json().items as {
      id: string;
      allocated: { vcpu: number; mem_mib: number };
    }[];
    for (const row of summed as { host_id: string; vcpu: number; mem_mib: number }[])
      expect(listed.find((h) => h.id === row.host_id)?.allocated).toMatchObject({
        vcpu: row.vcpu,
        mem_mib: row.mem_mib,
      });
  });

  it.each([
    ['/v1/vms?cursor=not-a-cursor'],
    [`/v1/vms?sort=created_at&cursor=${Buffer.from(JSON.stringify(['yesterday', 'x'])).toString('base64url')}`],
    [`/v1/vms?sort=name&cursor=${Buffer.from(JSON.stringify(['a'])).toString('base64url')}`],
    ['/v1/events?cursor=12ab'],
  ])('refuses the malformed cursor of %s with a 400 invalid_cursor', async (url) => {
    const res = await t.request({ method: 'GET', url });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_cursor', field: 'query.cursor' });
  });
});
