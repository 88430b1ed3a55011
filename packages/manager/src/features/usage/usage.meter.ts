import type { Usage, UsageTotals } from '@nqvm/api';

/** One usage_log row with the time the next row of its resource took over (null: it still holds). */
export interface LogSpan {
  resourceType: 'vm' | 'snapshot';
  resourceId: string;
  name: string;
  at: Date;
  until: Date | null;
  active: boolean;
  vcpu: number;
  memMib: number;
  diskBytes: number;
}

/** A stored metrics row's cumulative NIC counters (reset when the VMM restarts). */
export interface NetSample {
  vmId: string;
  at: Date;
  rx: number | null;
  tx: number | null;
}

export type Granularity = 'hour' | 'day';
const STEP_MS: Record<Granularity, number> = { hour: 3_600_000, day: 86_400_000 };
const GIB = 1024 ** 3;

export const zero = (): UsageTotals => ({
  vcpu_seconds: 0,
  memory_gib_seconds: 0,
  disk_gib_hours: 0,
  snapshot_gib_hours: 0,
  network_rx_bytes: 0,
  network_tx_bytes: 0,
});

/** The bucket starts of [from, to), aligned to UTC hours or days. */
export function bucketStarts(from: Date, to: Date, g: Granularity): number[] {
  const step = STEP_MS[g];
  const out: number[] = [];
  for (let t = Math.floor(from.getTime() / step) * step; t < to.getTime(); t += step) out.push(t);
  return out;
}

function add(into: UsageTotals, from: UsageTotals): void {
  for (const k of Object.keys(into) as (keyof UsageTotals)[]) into[k] += from[k];
}

/** What one span costs over [start, end) (already clipped). */
function costOf(s: LogSpan, start: number, end: number): UsageTotals {
  const seconds = Math.max(0, end - start) / 1000;
  const out = zero();
  if (seconds === 0) return out;
  const gibHours = ((s.diskBytes / GIB) * seconds) / 3600;
  if (s.resourceType === 'snapshot') {
    out.snapshot_gib_hours = gibHours;
    return out;
  }
  out.disk_gib_hours = gibHours;
  if (s.active) {
    out.vcpu_seconds = s.vcpu * seconds;
    out.memory_gib_seconds = (s.memMib / 1024) * seconds;
  }
  return out;
}

/** Bytes a VM's NICs moved between consecutive samples, at the later sample; a counter that fell was reset. */
function netDeltas(samples: NetSample[]): { vmId: string; at: number; rx: number; tx: number }[] {
  const byVm = new Map<string, NetSample[]>();
  for (const s of samples) byVm.set(s.vmId, [...(byVm.get(s.vmId) ?? []), s]);
  const out: { vmId: string; at: number; rx: number; tx: number }[] = [];
  for (const [vmId, list] of byVm) {
    list.sort((a, b) => a.at.getTime() - b.at.getTime());
    for (let i = 1; i < list.length; i++) {
      const a = list[i - 1]!;
      const b = list[i]!;
      const d = (x: number | null, y: number | null) => (y === null ? 0 : x === null || y < x ? y : y - x);
      out.push({ vmId, at: b.at.getTime(), rx: d(a.rx, b.rx), tx: d(a.tx, b.tx) });
    }
  }
  return out;
}

const round = (t: UsageTotals): UsageTotals => ({
  vcpu_seconds: Math.round(t.vcpu_seconds * 1000) / 1000,
  memory_gib_seconds: Math.round(t.memory_gib_seconds * 1000) / 1000,
  disk_gib_hours: Math.round(t.disk_gib_hours * 1e6) / 1e6,
  snapshot_gib_hours: Math.round(t.snapshot_gib_hours * 1e6) / 1e6,
  network_rx_bytes: t.network_rx_bytes,
  network_tx_bytes: t.network_tx_bytes,
});

/**
 * A project's usage over [from, to) per bucket and per resource, from its log spans (each open span ends at `now`)
 * and its VMs' metrics samples (deltas counted in the bucket of the later sample). Pure: the same rows give the same
 * figures, whenever and by whichever manager they are read.
 */
export function meter(
  projectId: string,
  spans: LogSpan[],
  samples: NetSample[],
  o: { from: Date; to: Date; now: Date; granularity: Granularity },
): Usage {
  const step = STEP_MS[o.granularity];
  const starts = bucketStarts(o.from, o.to, o.granularity);
  const lo = o.from.getTime();
  const hi = Math.min(o.to.getTime(), Math.max(lo, o.now.getTime()));
  const resources = new Map<string, { type: 'vm' | 'snapshot'; name: string; buckets: Map<number, UsageTotals> }>();
  const bucketOf = (id: string, type: 'vm' | 'snapshot', name: string, start: number) => {
    const r = resources.get(id) ?? { type, name, buckets: new Map<number, UsageTotals>() };
    r.name = name;
    resources.set(id, r);
    const b = r.buckets.get(start) ?? zero();
    r.buckets.set(start, b);
    return b;
  };
  for (const s of spans) {
    const a = Math.max(lo, s.at.getTime());
    const z = Math.min(hi, (s.until ?? o.now).getTime());
    if (z <= a) continue;
    for (let t = Math.floor(a / step) * step; t < z; t += step) {
      const start = Math.max(t, lo);
      add(bucketOf(s.resourceId, s.resourceType, s.name, t), costOf(s, Math.max(a, start), Math.min(z, t + step)));
    }
  }
  for (const d of netDeltas(samples)) {
    if (d.at < lo || d.at >= o.to.getTime()) continue;
    const b = bucketOf(d.vmId, 'vm', resources.get(d.vmId)?.name ?? d.vmId, Math.floor(d.at / step) * step);
    b.network_rx_bytes += d.rx;
    b.network_tx_bytes += d.tx;
  }
  const bucket = (start: number, t: UsageTotals) => ({
    start: new Date(Math.max(start, lo)).toISOString(),
    end: new Date(Math.min(start + step, o.to.getTime())).toISOString(),
    ...round(t),
  });
  const totals = new Map(starts.map((s) => [s, zero()]));
  const total = zero();
  const out: Usage['resources'] = [];
  for (const [id, r] of resources) {
    const mine = zero();
    for (const [start, t] of r.buckets) {
      add(mine, t);
      add(total, t);
      const all = totals.get(start);
      if (all) add(all, t);
    }
    const buckets = [...r.buckets].sort((x, y) => x[0] - y[0]).map(([start, t]) => bucket(start, t));
    out.push({ resource_type: r.type, resource_id: id, name: r.name, total: round(mine), buckets });
  }
  out.sort((x, y) => x.resource_type.localeCompare(y.resource_type) || x.name.localeCompare(y.name));
  return {
    project_id: projectId,
    from: o.from.toISOString(),
    to: o.to.toISOString(),
    granularity: o.granularity,
    total: round(total),
    buckets: [...totals].map(([start, t]) => bucket(start, t)),
    resources: out,
  };
}

const CSV_FIGURES = [
  'vcpu_seconds',
  'memory_gib_seconds',
  'disk_gib_hours',
  'snapshot_gib_hours',
  'network_rx_bytes',
  'network_tx_bytes',
] as const;

const csvField = (v: string) => (/[",\n\r]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v);

/** One line per resource and bucket it used something in. */
export function usageCsv(u: Usage): string {
  const lines = [['start', 'end', 'resource_type', 'resource_id', 'name', ...CSV_FIGURES].join(',')];
  for (const r of u.resources)
    for (const b of r.buckets)
      lines.push(
        [
          b.start,
          b.end,
          r.resource_type,
          r.resource_id,
          csvField(r.name),
          ...CSV_FIGURES.map((k) => String(b[k])),
        ].join(','),
      );
  return `${lines.join('\r\n')}\r\n`;
}
