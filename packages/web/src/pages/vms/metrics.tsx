import 'uplot/dist/uPlot.min.css';
import { api, type MetricsPoint, type Vm, type VmMetricsSample, wsRoutes } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import { Button, Card, ErrorState, Loading } from '../../components/ui.tsx';
import { call, openSocket } from '../../lib/api.ts';
import { formatBytes } from '../../lib/format.ts';
import { cssColor, useDark } from '../../lib/theme.ts';

/** One moment of a VM, from a live frame or a stored point; disk and network are cumulative byte counters. */
interface Sample {
  t: number;
  cpu: number | null;
  memUsed: number | null;
  memTotal: number | null;
  diskRead: number | null;
  diskWrite: number | null;
  netRx: number | null;
  netTx: number | null;
}

const RANGE_MS: Record<'1h' | '24h' | '7d', number> = { '1h': 3600_000, '24h': 86400_000, '7d': 7 * 86400_000 };
type Range = 'live' | '1h' | '24h' | '7d';
const LIVE_S = 60;

function fromFrame(f: VmMetricsSample): Sample {
  const g = f.guest.metrics;
  return {
    t: Date.parse(f.at) / 1000,
    cpu: g?.cpu_pct ?? f.host.cpu_pct,
    memUsed: g?.mem_used_bytes ?? f.host.rss_bytes,
    memTotal: g?.mem_total_bytes ?? null,
    diskRead: f.host.disk_read_bytes,
    diskWrite: f.host.disk_write_bytes,
    netRx: f.host.net_rx_bytes,
    netTx: f.host.net_tx_bytes,
  };
}

function fromPoint(p: MetricsPoint): Sample {
  return {
    t: Date.parse(p.at) / 1000,
    cpu: p.guest_cpu_pct ?? p.host_cpu_pct,
    memUsed: p.mem_used_bytes ?? p.rss_bytes,
    memTotal: p.mem_total_bytes,
    diskRead: p.disk_read_bytes,
    diskWrite: p.disk_write_bytes,
    netRx: p.net_rx_bytes,
    netTx: p.net_tx_bytes,
  };
}

/** Bytes per second between consecutive counter readings; null at the start, across gaps and counter resets. */
export function rates(samples: Sample[], key: 'diskRead' | 'diskWrite' | 'netRx' | 'netTx'): (number | null)[] {
  return samples.map((s, i) => {
    const prev = samples[i - 1];
    const a = prev?.[key];
    const b = s[key];
    if (!prev || a == null || b == null || b < a || s.t <= prev.t) return null;
    return (b - a) / (s.t - prev.t);
  });
}

const MIB = 1048576;
const rate = (v: number) => `${formatBytes(v)}/s`;

/** The four quantities, each its own chart with its unit on the y axis, which starts at 0. */
const CHARTS: {
  key: string;
  title: string;
  unit: string;
  series: { label: string; color: string; values: (xs: Sample[]) => (number | null)[] }[];
  format: (v: number) => string;
  min?: number;
}[] = [
  {
    key: 'cpu',
    title: 'CPU',
    unit: '%',
    series: [{ label: 'CPU', color: 'blue-600', values: (xs) => xs.map((s) => s.cpu) }],
    format: (v) => `${v.toFixed(0)} %`,
    min: 100,
  },
  {
    key: 'memory',
    title: 'Memory',
    unit: 'MiB',
    series: [
      {
        label: 'used',
        color: 'green-600',
        values: (xs) => xs.map((s) => (s.memUsed == null ? null : s.memUsed / MIB)),
      },
      {
        label: 'total',
        color: 'slate-400',
        values: (xs) => xs.map((s) => (s.memTotal == null ? null : s.memTotal / MIB)),
      },
    ],
    format: (v) => `${v.toFixed(v < 10 ? 1 : 0)} MiB`,
  },
  {
    key: 'disk',
    title: 'Disk',
    unit: 'B/s',
    series: [
      { label: 'read', color: 'blue-600', values: (xs) => rates(xs, 'diskRead') },
      { label: 'write', color: 'amber-500', values: (xs) => rates(xs, 'diskWrite') },
    ],
    format: rate,
  },
  {
    key: 'network',
    title: 'Network',
    unit: 'B/s',
    series: [
      { label: 'received', color: 'green-600', values: (xs) => rates(xs, 'netRx') },
      { label: 'sent', color: 'red-500', values: (xs) => rates(xs, 'netTx') },
    ],
    format: rate,
  },
];

/** One quantity over time: units on the y axis, y from 0, values under the cursor in the legend. */
function Chart({
  chart,
  samples,
  span,
  windowS,
}: {
  chart: (typeof CHARTS)[number];
  samples: Sample[];
  span: string;
  windowS?: number;
}) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const dark = useDark();
  const data = (): uPlot.AlignedData => [samples.map((s) => s.t), ...chart.series.map((s) => s.values(samples))];
  // biome-ignore lint/correctness/useExhaustiveDependencies: rebuilt for a new chart, window or theme; data follows below
  useEffect(() => {
    const box = el.current;
    if (!box) return;
    const axis = { stroke: cssColor('slate-600'), grid: { stroke: cssColor('slate-200'), width: 1 } };
    const opts: uPlot.Options = {
      width: Math.max(280, box.clientWidth),
      height: 200,
      series: [
        {},
        ...chart.series.map((s) => ({
          label: s.label,
          stroke: cssColor(s.color),
          width: 2,
          value: (_u: uPlot, v: number | null) => (v == null ? '—' : chart.format(v)),
        })),
      ],
      axes: [
        { ...axis },
        { ...axis, label: chart.unit, size: 70, values: (_u, ticks) => ticks.map((v) => chart.format(v)) },
      ],
      scales: {
        y: { range: (_u, _min, max) => [0, Math.max(chart.min ?? 0, max > 0 ? max * 1.1 : 1)] },
        ...(windowS
          ? { x: { time: true, range: (): uPlot.Range.MinMax => [Date.now() / 1000 - windowS, Date.now() / 1000] } }
          : {}),
      },
    };
    plot.current = new uPlot(opts, data(), box);
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(280, box.clientWidth), height: 200 }));
    ro.observe(box);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
    };
  }, [chart, windowS, dark]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: data() reads samples
  useEffect(() => plot.current?.setData(data()), [samples]);
  return (
    <figure className="min-w-0 rounded-md border border-slate-200 bg-white p-2" data-chart={chart.key}>
      <figcaption className="text-sm font-medium text-slate-700">
        {chart.title} ({chart.unit})
      </figcaption>
      <div
        ref={el}
        role="img"
        aria-label={`${chart.title} (${chart.unit}), ${span}: ${samples.length} points`}
        data-points={samples.length}
      />
    </figure>
  );
}

function Charts({ samples, span, windowS }: { samples: Sample[]; span: string; windowS?: number }) {
  return (
    <div className="grid gap-3 lg:grid-cols-2">
      {CHARTS.map((c) => (
        <Chart key={c.key} chart={c} samples={samples} span={span} {...(windowS ? { windowS } : {})} />
      ))}
    </div>
  );
}

export default function MetricsTab({ vm }: { vm: Vm }) {
  const [range, setRange] = useState<Range>('live');
  return (
    <Card
      title="Metrics"
      actions={(['live', '1h', '24h', '7d'] as Range[]).map((r) => (
        <Button
          key={r}
          variant={r === range ? 'primary' : 'secondary'}
          aria-pressed={r === range}
          onClick={() => setRange(r)}
        >
          {r === 'live' ? 'Live 60 s' : r}
        </Button>
      ))}
    >
      {range === 'live' ? <Live vm={vm} /> : <History vm={vm} range={range} />}
    </Card>
  );
}

function Live({ vm }: { vm: Vm }) {
  const [samples, setSamples] = useState<Sample[]>([]);
  const [closed, setClosed] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const [health, setHealth] = useState<{ health: string; last_seen: string | null } | null>(null);
  const running = vm.state === 'running' || vm.state === 'paused';
  // biome-ignore lint/correctness/useExhaustiveDependencies: attempt forces a reconnect
  useEffect(() => {
    if (!running) return;
    const ws = openSocket(wsRoutes.metrics, { id: vm.id });
    // A socket this effect already closed (unmount, reconnect) must not mark the next one as disconnected.
    let disposed = false;
    setClosed(false);
    ws.onmessage = (m) => {
      const f = JSON.parse(String(m.data)) as VmMetricsSample;
      if (f.type !== 'sample') return;
      setHealth({ health: f.guest.health, last_seen: f.guest.last_seen });
      const s = fromFrame(f);
      setSamples((xs) => [...xs.filter((x) => x.t > s.t - LIVE_S - 2), s]);
    };
    ws.onclose = () => {
      if (!disposed) setClosed(true);
    };
    return () => {
      disposed = true;
      ws.close();
    };
  }, [vm.id, running, attempt]);
  return (
    <>
      {!running ? (
        <p role="status" className="mb-2 text-sm text-slate-600">
          The VM is {vm.state}: no live metrics. The 1h, 24h and 7d ranges show what was recorded.
        </p>
      ) : closed ? (
        <p role="status" className="mb-2 flex items-center gap-3 text-sm text-amber-800">
          Live metrics disconnected.
          <Button onClick={() => setAttempt((n) => n + 1)}>Reconnect</Button>
        </p>
      ) : null}
      {health && running ? (
        <p role="status" className="mb-2 text-sm text-slate-600">
          Guest agent: <strong>{health.health}</strong>
          {health.last_seen ? ` (last seen ${new Date(health.last_seen).toLocaleTimeString()})` : ''}
          {health.health !== 'healthy' ? ' — CPU and memory are host-side figures (VMM process)' : ''}
        </p>
      ) : null}
      <Charts samples={samples} span="last 60 seconds" windowS={LIVE_S} />
    </>
  );
}

function History({ vm, range }: { vm: Vm; range: Exclude<Range, 'live'> }) {
  const q = useQuery({
    queryKey: ['vm', vm.id, 'metrics', range],
    queryFn: async () => {
      const to = new Date();
      const from = new Date(to.getTime() - RANGE_MS[range]);
      const step = range === '1h' ? 'raw' : range === '24h' ? '5m' : '1h';
      const h = await call(api.vmObserve.metricsHistory, {
        params: { id: vm.id },
        query: { from: from.toISOString(), to: to.toISOString(), step },
      });
      return h.points.map(fromPoint);
    },
    retry: false,
  });
  if (q.isPending) return <Loading />;
  if (q.error) return <ErrorState error={q.error} what="Metrics history" />;
  if (q.data.length === 0)
    return <p className="text-sm text-slate-500">No samples were recorded for this VM in the last {range}.</p>;
  return <Charts samples={q.data} span={`last ${range}`} />;
}
