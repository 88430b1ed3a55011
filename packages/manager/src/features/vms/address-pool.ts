import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import type { vmNics } from '../../db/schema.ts';

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
type NicRow = typeof vmNics.$inferSelect;
type Runner = Db | Tx;

/** How many addresses the pool grows by when it runs dry. */
const BLOCK = 256;

async function rows<T>(db: Runner, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

/** The lowest free address of the pool, skipping rows other transactions are claiming. */
async function claimFree(tx: Runner, network: string, vmId: string): Promise<string | null> {
  const [row] = await rows<{ ip: string }>(
    tx,
    sql`UPDATE network_addresses SET vm_id = ${vmId}
          WHERE (network, ip) = (
            SELECT network, ip FROM network_addresses WHERE network = ${network} AND vm_id IS NULL
            ORDER BY ip LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING ip::text AS ip`,
  );
  return row?.ip ?? null;
}

/**
 * NIC addresses of a network (migration 0008): the lowest free row of `network_addresses` is claimed with
 * `FOR UPDATE SKIP LOCKED`, so concurrent creates take different rows at once instead of racing for one and retrying.
 * The claim belongs to the caller's transaction: it is undone with it, and deleting the NIC releases it (trigger).
 */
export async function claimAddress(tx: Runner, network: string, vmId: string): Promise<string | null> {
  for (;;) {
    const claimed = await claimFree(tx, network, vmId);
    if (claimed) return claimed;
    // Dry: grow the pool under the network's row lock. A claimer that waited here retries first, since the holder's
    // block is visible once it commits.
    const [net] = await rows<{ next: string; last: string }>(
      tx,
      sql`SELECT pool_next::text AS next, ((1::bigint << (32 - masklen(cidr))) - 2)::text AS last
          FROM networks WHERE name = ${network} FOR UPDATE`,
    );
    if (!net) return null;
    const again = await claimFree(tx, network, vmId);
    if (again) return again;
    const from = BigInt(net.next);
    const last = BigInt(net.last);
    if (from > last) return null;
    const to = from + BigInt(BLOCK) - 1n < last ? from + BigInt(BLOCK) - 1n : last;
    await tx.execute(
      sql`INSERT INTO network_addresses (network, ip)
          SELECT name, cidr::inet + o FROM networks, generate_series(${from.toString()}::bigint, ${to.toString()}::bigint) AS o
          WHERE name = ${network} AND host(cidr::inet + o) <> host(gateway)
          ON CONFLICT DO NOTHING`,
    );
    await tx.execute(sql`UPDATE networks SET pool_next = ${(to + 1n).toString()}::bigint WHERE name = ${network}`);
  }
}

/**
 * A NIC with the lowest free address of its network, claimed and inserted in one statement (one round trip: creates
 * are bound by them on PGlite); when the pool's rows are all taken it grows first, as `claimAddress` does. Null when
 * the network is full.
 */
export async function insertNicWithAddress(
  tx: Runner,
  nic: { vmId: string; ifaceId: string; network: string; mac: string; config: Record<string, unknown> },
): Promise<NicRow | null> {
  const [row] = await rows<NicRow>(
    tx,
    sql`WITH claimed AS (
          UPDATE network_addresses SET vm_id = ${nic.vmId}
           WHERE (network, ip) = (
             SELECT network, ip FROM network_addresses WHERE network = ${nic.network} AND vm_id IS NULL
             ORDER BY ip LIMIT 1 FOR UPDATE SKIP LOCKED)
          RETURNING ip)
        INSERT INTO vm_nics (vm_id, iface_id, network, mac, ip, config)
        SELECT ${nic.vmId}, ${nic.ifaceId}, ${nic.network}, ${nic.mac}, ip, ${JSON.stringify(nic.config)}::jsonb FROM claimed
        RETURNING vm_id AS "vmId", iface_id AS "ifaceId", network, mac, ip, config`,
  );
  if (row) return row;
  const ip = await claimAddress(tx, nic.network, nic.vmId);
  if (!ip) return null;
  const [added] = await rows<NicRow>(
    tx,
    sql`INSERT INTO vm_nics (vm_id, iface_id, network, mac, ip, config)
        VALUES (${nic.vmId}, ${nic.ifaceId}, ${nic.network}, ${nic.mac}, ${ip}::inet, ${JSON.stringify(nic.config)}::jsonb)
        RETURNING vm_id AS "vmId", iface_id AS "ifaceId", network, mac, ip, config`,
  );
  return added ?? null;
}
