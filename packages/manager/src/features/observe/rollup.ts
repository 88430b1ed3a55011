import type { GuestHealth, MetricsPoint, VmMetricsSample } from '@nqvm/api';

/** A stored row, raw or already rolled up. */
export interface StoredPoint {
  at: Date;
  samples: number;
  host_cpu_pct: number | null;
  guest_cpu_pct: number | null;
  rss_bytes: number | null;
  mem_used_bytes: number | null;
  mem_total_bytes: number | null;
  disk_read_bytes: number | null;
  disk_write_bytes: number | null;
  net_rx_bytes: number | null;
  net_tx_bytes: number | null;
  guest_health: GuestHealth | null;
}

const AVERAGED = ['host_cpu_pct', 'guest_cpu_pct', 'rss_bytes', 'mem_used_bytes', 'mem_total_bytes'] as const;
// Cumulative counters: a bucket keeps the last reading, so differences between points stay rates.
const LAST = ['disk_read_bytes', 'disk_write_bytes', 'net_rx_bytes', 'net_tx_bytes'] as const;

export const BUCKET_MS = { '5m': 5 * 60_000, '1h': 3_600_000 } as const;

/** The row a live sample becomes: guest figures only when the guest agent answered. */
export function pointFromSample(s: VmMetricsSample): StoredPoint {
  const g = s.guest.metrics;
  return {
    at: new Date(s.at),
    samples: 1,
    host_cpu_pct: s.host.cpu_pct,
    guest_cpu_pct: g?.cpu_pct ?? null,
    rss_bytes: s.host.rss_bytes,
    mem_used_bytes: g?.mem_used_bytes ?? null,
    mem_total_bytes: g?.mem_total_bytes ?? null,
    disk_read_bytes: s.host.disk_read_bytes,
    disk_write_bytes: s.host.disk_write_bytes,
    net_rx_bytes: s.host.net_rx_bytes,
    net_tx_bytes: s.host.net_tx_bytes,
    guest_health: s.guest.health,
  };
}

/**
 * Groups points into buckets of `bucketMs` (aligned to the epoch): gauges are averaged weighted by how many
 * samples each point stands for, ignoring gaps; counters and guest health keep the bucket's last value.
 */
export function bucketize(points: StoredPoint[], bucketMs: number): StoredPoint[] {
  const groups = new Map<number, StoredPoint[]>();
  for (const p of [...points].sort((a, b) => a.at.getTime() - b.at.getTime())) {
    const key = Math.floor(p.at.getTime() / bucketMs) * bucketMs;
    const g = groups.get(key);
    if (g) g.push(p);
    else groups.set(key, [p]);
  }
  return [...groups].map(([key, ps]) => {
    const out: StoredPoint = {
      at: new Date(key),
      samples: ps.reduce((n, p) => n + p.samples, 0),
      host_cpu_pct: null,
      guest_cpu_pct: null,
      rss_bytes: null,
      mem_used_bytes: null,
      mem_total_bytes: null,
      disk_read_bytes: null,
      disk_write_bytes: null,
      net_rx_bytes: null,
      net_tx_bytes: null,
      guest_health: null,
    };
    for (const f of AVERAGED) {
      let sum = 0;
      let weight = 0;
      for (const p of ps) {
        const v = p[f];
        if (v === null) continue;
        sum += v * p.samples;
        weight += p.samples;
      }
      // Byte gauges go back into bigint columns: whole numbers; percentages keep two decimals.
      const scale = f.endsWith('_pct') ? 100 : 1;
      out[f] = weight ? Math.round((sum / weight) * scale) / scale : null;
    }
    for (const f of LAST) out[f] = ps.findLast((p) => p[f] !== null)?.[f] ?? null;
    out.guest_health = ps.findLast((p) => p.guest_health !== null)?.guest_health ?? null;
    return out;
  });
}

export function toApiPoint(p: StoredPoint): MetricsPoint {
  return { ...p, at: p.at.toISOString() };
}
