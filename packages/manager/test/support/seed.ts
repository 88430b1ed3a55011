import type { Database } from '../../src/db/client.ts';

export interface SeedVms {
  count: number;
  /** Host ids the VMs are spread over. */
  hosts: string[];
  kernel: string;
  rootfs: string;
  /** The network their eth0 NICs are on (its pool is advanced past the seeded addresses). */
  network: string;
  /** Name prefix, so several seeds can share a database. */
  prefix?: string;
}

/**
 * Many VMs in a few statements, shaped like real ones: spread over hosts, states, owners, environments and tags,
 * each with an eth0 NIC whose address is taken from the network's pool, created over the last days.
 */
export async function seedVms(database: Database, s: SeedVms): Promise<void> {
  const prefix = s.prefix ?? 'seed';
  await database.withSession(async (q) => {
    await q.query(
      `INSERT INTO vms (name, description, state, host_id, vmm, vcpu, mem_mib, kernel_image_id, rootfs_image_id,
         boot_args, tags, owner, environment, guest_token_hash, guest_token_enc, guest_ip, created_at, updated_at)
       SELECT $1::text || '-' || lpad(i::text, 6, '0'), 'seeded VM ' || i,
         (ARRAY['running','running','running','stopped','paused','error'])[1 + i % 6],
         ($2::uuid[])[1 + i % array_length($2::uuid[], 1)], 'qemu', 1 + i % 4, 256 * (1 + i % 4), $3::uuid, $4::uuid,
         'console=ttyS0', ARRAY['team-' || (i % 7), 'tier-' || (i % 3)], 'owner-' || (i % 11),
         (ARRAY['prod','staging','dev'])[1 + i % 3], md5($1::text || i::text), 'sealed', NULL,
         now() - (i || ' seconds')::interval, now() - (i || ' seconds')::interval
       FROM generate_series(1, $5::int) AS i`,
      [prefix, s.hosts, s.kernel, s.rootfs, s.count],
    );
    // eth0 for each, addresses from the pool's next offsets, claimed in the pool as creates would.
    await q.query(
      `WITH net AS (SELECT name, cidr, gateway, pool_next FROM networks WHERE name = $1::text FOR UPDATE),
       numbered AS (
         SELECT v.id, row_number() OVER (ORDER BY v.name) AS k FROM vms v
         WHERE v.name LIKE $2::text || '-%' AND NOT EXISTS (SELECT 1 FROM vm_nics n WHERE n.vm_id = v.id)),
       addr AS (
         SELECT o, row_number() OVER (ORDER BY o) AS k FROM net,
           generate_series(net.pool_next, net.pool_next + $3::int * 2) AS o
         WHERE host(net.cidr::inet + o) <> host(net.gateway)),
       nics AS (
         INSERT INTO vm_nics (vm_id, iface_id, network, mac, ip)
         SELECT numbered.id, 'eth0', net.name,
           '02:5e:' || substr(md5(numbered.id::text), 1, 2) || ':' || substr(md5(numbered.id::text), 3, 2) || ':' ||
             lpad(to_hex((addr.o >> 8) & 255), 2, '0') || ':' || lpad(to_hex(addr.o & 255), 2, '0'),
           net.cidr::inet + addr.o
         FROM numbered JOIN addr USING (k), net
         RETURNING vm_id, network, ip)
       INSERT INTO network_addresses (network, ip, vm_id) SELECT network, ip, vm_id FROM nics`,
      [s.network, prefix, s.count],
    );
    await q.query(
      `UPDATE networks SET pool_next = greatest(pool_next, (
         SELECT max(a.ip - networks.cidr::inet) + 1 FROM network_addresses a WHERE a.network = networks.name))
       WHERE name = $1`,
      [s.network],
    );
  });
}

/** Many events in one statement: VM lifecycle actions by users and the system over the last day. */
export async function seedEvents(database: Database, count: number, vmIds: string[]): Promise<void> {
  await database.withSession((q) =>
    q.query(
      `INSERT INTO events (at, actor, resource_type, resource_id, action, result, detail)
       SELECT now() - ((($1::int - i) * 100) || ' milliseconds')::interval,
         (ARRAY['user:admin','system','token:ci'])[1 + i % 3], 'vm', ($2::text[])[1 + i % array_length($2::text[], 1)],
         (ARRAY['create','start','boot','stop','stopped','guest_ready'])[1 + i % 6],
         (ARRAY['ok','ok','ok','ok','info','error'])[1 + i % 6],
         jsonb_build_object('seq', i, 'host_id', 'h' || (i % 4))
       FROM generate_series(1, $1::int) AS i`,
      [count, vmIds],
    ),
  );
}
