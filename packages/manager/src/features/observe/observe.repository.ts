import { and, asc, eq, gte, lt, lte, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { vmMetrics } from '../../db/schema.ts';
import type { StoredPoint } from './rollup.ts';

type Row = typeof vmMetrics.$inferSelect;

export interface LatestSample extends StoredPoint {
  vm_id: string;
  vm_name: string;
  owner: string;
  host: string;
}

function toPoint(r: Row): StoredPoint {
  return {
    at: r.at,
    samples: r.samples,
    host_cpu_pct: r.hostCpuPct,
    guest_cpu_pct: r.guestCpuPct,
    rss_bytes: r.rssBytes,
    mem_used_bytes: r.memUsedBytes,
    mem_total_bytes: r.memTotalBytes,
    disk_read_bytes: r.diskReadBytes,
    disk_write_bytes: r.diskWriteBytes,
    net_rx_bytes: r.netRxBytes,
    net_tx_bytes: r.netTxBytes,
    guest_health: r.guestHealth,
  };
}

function toRow(vmId: string, resolution: 'raw' | '5m', p: StoredPoint): typeof vmMetrics.$inferInsert {
  return {
    vmId,
    at: p.at,
    resolution,
    samples: p.samples,
    hostCpuPct: p.host_cpu_pct,
    guestCpuPct: p.guest_cpu_pct,
    rssBytes: p.rss_bytes,
    memUsedBytes: p.mem_used_bytes,
    memTotalBytes: p.mem_total_bytes,
    diskReadBytes: p.disk_read_bytes,
    diskWriteBytes: p.disk_write_bytes,
    netRxBytes: p.net_rx_bytes,
    netTxBytes: p.net_tx_bytes,
    guestHealth: p.guest_health,
  };
}

/** Metrics history in `vm_metrics`: raw samples, 5-minute rollups, and the latest sample per VM. */
export class ObserveRepository {
  constructor(private readonly db: Db) {}

  async insert(vmId: string, p: StoredPoint, resolution: 'raw' | '5m' = 'raw'): Promise<void> {
    await this.db
      .insert(vmMetrics)
      .values(toRow(vmId, resolution, p))
      .onConflictDoNothing();
  }

  /** Points of any resolution in [from, to], oldest first, at most `limit`. */
  async range(vmId: string, from: Date, to: Date, limit: number): Promise<StoredPoint[]> {
    const rows = await this.db
      .select()
      .from(vmMetrics)
      .where(and(eq(vmMetrics.vmId, vmId), gte(vmMetrics.at, from), lte(vmMetrics.at, to)))
      .orderBy(asc(vmMetrics.at))
      .limit(limit);
    return rows.map(toPoint);
  }

  /** When the oldest raw row before `before` was taken, if any. */
  async oldestRaw(before: Date): Promise<Date | undefined> {
    const [row] = await this.db
      .select({ at: vmMetrics.at })
      .from(vmMetrics)
      .where(and(eq(vmMetrics.resolution, 'raw'), lt(vmMetrics.at, before)))
      .orderBy(asc(vmMetrics.at))
      .limit(1);
    return row?.at;
  }

  /** Every row (raw and rolled up) of every VM in [from, to). */
  async window(from: Date, to: Date): Promise<Array<{ vmId: string; point: StoredPoint }>> {
    const rows = await this.db
      .select()
      .from(vmMetrics)
      .where(and(gte(vmMetrics.at, from), lt(vmMetrics.at, to)));
    return rows.map((r) => ({ vmId: r.vmId, point: toPoint(r) }));
  }

  /** Replaces the raw rows of [from, to) for the given VMs by their rollups, in one transaction. */
  async replaceWithRollups(from: Date, to: Date, rollups: Array<{ vmId: string; point: StoredPoint }>) {
    await this.db.transaction(async (tx) => {
      for (const r of rollups)
        await tx
          .insert(vmMetrics)
          .values(toRow(r.vmId, '5m', r.point))
          .onConflictDoUpdate({
            target: [vmMetrics.vmId, vmMetrics.resolution, vmMetrics.at],
            set: toRow(r.vmId, '5m', r.point),
          });
      await tx
        .delete(vmMetrics)
        .where(and(eq(vmMetrics.resolution, 'raw'), gte(vmMetrics.at, from), lt(vmMetrics.at, to)));
    });
  }

  async deleteOlderThan(cutoff: Date): Promise<number> {
    const res = await this.db.delete(vmMetrics).where(lt(vmMetrics.at, cutoff)).returning({ vmId: vmMetrics.vmId });
    return res.length;
  }

  /** The newest raw sample of each VM sampled since `since`, with the labels Prometheus series carry. */
  async latest(since: Date): Promise<LatestSample[]> {
    const res = (await this.db.execute(sql`SELECT DISTINCT ON (m.vm_id) m.*, v.name AS vm_name, v.owner,
        coalesce(h.name, '') AS host_name
      FROM vm_metrics m JOIN vms v ON v.id = m.vm_id LEFT JOIN hosts h ON h.id = v.host_id
      WHERE m.resolution = 'raw' AND m.at >= ${since.toISOString()}::timestamptz
      ORDER BY m.vm_id, m.at DESC`)) as unknown as { rows: Record<string, unknown>[] };
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return res.rows.map((r) => ({
      vm_id: String(r.vm_id),
      vm_name: String(r.vm_name),
      owner: String(r.owner),
      host: String(r.host_name),
      at: new Date(String(r.at)),
      samples: Number(r.samples),
      host_cpu_pct: num(r.host_cpu_pct),
      guest_cpu_pct: num(r.guest_cpu_pct),
      rss_bytes: num(r.rss_bytes),
      mem_used_bytes: num(r.mem_used_bytes),
      mem_total_bytes: num(r.mem_total_bytes),
      disk_read_bytes: num(r.disk_read_bytes),
      disk_write_bytes: num(r.disk_write_bytes),
      net_rx_bytes: num(r.net_rx_bytes),
      net_tx_bytes: num(r.net_tx_bytes),
      guest_health: (r.guest_health as StoredPoint['guest_health']) ?? null,
    }));
  }

  /** VMs the history sampler should sample: placed and running or paused. */
  async sampled(): Promise<Array<{ id: string; hostId: string }>> {
    const res = (await this.db.execute(
      sql`SELECT id, host_id FROM vms WHERE host_id IS NOT NULL AND state IN ('running', 'paused')`,
    )) as unknown as { rows: Array<{ id: string; host_id: string }> };
    return res.rows.map((r) => ({ id: r.id, hostId: r.host_id }));
  }
}
