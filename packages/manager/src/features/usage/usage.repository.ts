import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import type { LogSpan, NetSample } from './usage.meter.ts';

async function rows<T>(db: Db, query: SQL): Promise<T[]> {
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows;
}

const date = (v: unknown) => (v instanceof Date ? v : new Date(String(v)));

/** Reads the usage log (written by triggers on vms and snapshots) and the stored metrics samples. */
export class UsageRepository {
  constructor(private readonly db: Db) {}

  async now(): Promise<Date> {
    const [r] = await rows<{ now: unknown }>(this.db, sql`SELECT now() AS now`);
    return date(r!.now);
  }

  /** The project's log rows that hold for part of [from, to), each with when the next row of its resource came. */
  async spans(projectId: string, from: Date, to: Date): Promise<LogSpan[]> {
    const list = await rows<Record<string, unknown>>(
      this.db,
      sql`SELECT * FROM (
            SELECT l.*, lead(l.at) OVER (PARTITION BY l.resource_id ORDER BY l.at, l.id) AS until
            FROM usage_log l
            WHERE l.resource_id IN (SELECT resource_id FROM usage_log WHERE project_id = ${projectId} AND at < ${to})
          ) s
          WHERE s.project_id = ${projectId} AND NOT s.gone AND s.at < ${to} AND (s.until IS NULL OR s.until > ${from})
          ORDER BY s.at, s.id`,
    );
    return list.map((r) => ({
      resourceType: r.resource_type as 'vm' | 'snapshot',
      resourceId: String(r.resource_id),
      name: String(r.name),
      at: date(r.at),
      until: r.until === null ? null : date(r.until),
      active: Boolean(r.active),
      vcpu: Number(r.vcpu),
      memMib: Number(r.mem_mib),
      diskBytes: Number(r.disk_bytes),
    }));
  }

  /**
   * NIC counters of the project's VMs from `since` (a little before the window, for the first delta) to `to`. Raw
   * samples where they are kept, the 5-minute rollups before them (a rollup keeps its bucket's last counter values).
   */
  async netSamples(projectId: string, since: Date, to: Date): Promise<NetSample[]> {
    const list = await rows<{ vm_id: string; at: unknown; rx: string | null; tx: string | null }>(
      this.db,
      sql`WITH mine AS (
            SELECT DISTINCT resource_id AS vm_id FROM usage_log WHERE project_id = ${projectId} AND resource_type = 'vm'
          ), firstraw AS (
            SELECT m.vm_id, min(m.at) AS at FROM vm_metrics m JOIN mine USING (vm_id)
            WHERE m.resolution = 'raw' GROUP BY m.vm_id
          )
          SELECT m.vm_id, m.at, m.net_rx_bytes AS rx, m.net_tx_bytes AS tx
          FROM vm_metrics m JOIN mine USING (vm_id) LEFT JOIN firstraw f USING (vm_id)
          WHERE m.at >= ${since} AND m.at < ${to}
            AND (m.resolution = 'raw' OR f.at IS NULL OR m.at < f.at)`,
    );
    return list.map((r) => ({
      vmId: r.vm_id,
      at: date(r.at),
      rx: r.rx === null ? null : Number(r.rx),
      tx: r.tx === null ? null : Number(r.tx),
    }));
  }
}
