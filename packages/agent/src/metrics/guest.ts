import type { GuestMetricsValues } from '@nqvm/api';

/** Maps the guest agent's `/metrics` JSON onto the frame's guest group; undefined when it is not that shape. */
export function guestValues(body: unknown): GuestMetricsValues | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const g = body as Record<string, unknown>;
  const obj = (v: unknown) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);
  const disk = obj(g.disk);
  const net = obj(g.network);
  const load = obj(g.load_average);
  const out = {
    cpu_pct: n(g.cpu_usage_percent),
    cpu_count: n(g.cpu_count),
    mem_used_bytes: kib(n(g.memory_used_kb)),
    mem_total_bytes: kib(n(g.memory_total_kb)),
    mem_available_bytes: kib(n(g.memory_available_kb)),
    uptime_s: n(g.uptime_seconds),
    load_1: n(load.one),
    process_count: n(g.process_count),
    disk_used_bytes: n(disk.used_bytes),
    disk_total_bytes: n(disk.total_bytes),
    net_rx_bytes: n(net.rx_bytes),
    net_tx_bytes: n(net.tx_bytes),
  };
  if (Object.values(out).some((v) => v === undefined)) return undefined;
  return out as GuestMetricsValues;
}

function kib(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.round(v * 1024);
}
