import 'uplot/dist/uPlot.min.css';
import { api, socketPaths, type Vm } from '@nqvm/api';
import { useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import { Button, Card, ErrorState, Loading } from '../../components/ui.tsx';
import { call, openSocket } from '../../lib/api.ts';

/** A chart point, from a live frame of `/v1/vms/{id}/metrics/ws` or a stored history point. */
interface Sample {
  at: string;
  cpu_percent: number | null;
  mem_used_bytes: number | null;
}

/** A live frame: host-side and guest-side groups, each marked with its source. */
interface LiveFrame {
  type: 'sample';
  at: string;
  host: { cpu_pct: number | null; rss_bytes: number | null };
  guest: { health: string; last_seen: string | null; metrics: { cpu_pct: number; mem_used_bytes: number } | null };
}

const RANGE_MS: Record<'1h' | '24h' | '7d', number> = { '1h': 3600_000, '24h': 86400_000, '7d': 7 * 86400_000 };
type Range = 'live' | '1h' | '24h' | '7d';
const SERIES: { key: keyof Sample; label: string; stroke: string }[] = [
  { key: 'cpu_percent', label: 'CPU %', stroke: '#2563eb' },
  { key: 'mem_used_bytes', label: 'Memory (MiB)', stroke: '#16a34a' },
];

function toData(samples: Sample[]): uPlot.AlignedData {
  return [
    samples.map((s) => new Date(s.at).getTime() / 1000),
    samples.map((s) => s.cpu_percent),
    samples.map((s) => (s.mem_used_bytes === null ? null : s.mem_used_bytes / 1048576)),
  ];
}

/** A chart of samples; `windowS` pins the x axis to the last that many seconds (the live view scrolls). */
function Chart({ samples, title, windowS }: { samples: Sample[]; title: string; windowS?: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!el.current) return;
    plot.current = new uPlot(
      {
        title,
        width: Math.max(300, el.current.clientWidth),
        height: 260,
        series: [{}, ...SERIES.map((s, i) => ({ label: s.label, stroke: s.stroke, scale: i === 0 ? '%' : 'mib' }))],
        axes: [{}, { scale: '%' }, { scale: 'mib', side: 1 }],
        scales: {
          '%': { range: [0, 100] },
          ...(windowS
            ? { x: { time: true, range: (): uPlot.Range.MinMax => [Date.now() / 1000 - windowS, Date.now() / 1000] } }
            : {}),
        },
      },
      toData([]),
      el.current,
    );
    return () => plot.current?.destroy();
  }, [title, windowS]);
  useEffect(() => plot.current?.setData(toData(samples)), [samples]);
  return <div ref={el} role="img" aria-label={`${title}: ${samples.length} points`} data-points={samples.length} />;
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
  // biome-ignore lint/correctness/useExhaustiveDependencies: attempt forces a reconnect
  useEffect(() => {
    const ws = openSocket(socketPaths.vmMetrics, { id: vm.id });
    // A socket this effect already closed (unmount, reconnect) must not mark the next one as disconnected.
    let disposed = false;
    setClosed(false);
    ws.onmessage = (m) => {
      const f = JSON.parse(String(m.data)) as LiveFrame;
      if (f.type !== 'sample') return;
      setHealth({ health: f.guest.health, last_seen: f.guest.last_seen });
      const s: Sample = {
        at: f.at,
        cpu_percent: f.guest.metrics?.cpu_pct ?? f.host.cpu_pct,
        mem_used_bytes: f.guest.metrics?.mem_used_bytes ?? f.host.rss_bytes,
      };
      setSamples((xs) => [...xs.filter((x) => Date.parse(x.at) > Date.parse(s.at) - 60_000), s]);
    };
    ws.onclose = () => {
      if (!disposed) setClosed(true);
    };
    return () => {
      disposed = true;
      ws.close();
    };
  }, [vm.id, attempt]);
  return (
    <>
      {closed ? (
        <p role="status" className="mb-2 flex items-center gap-3 text-sm text-amber-800">
          Live metrics disconnected: the VM may not be running.
          <Button onClick={() => setAttempt((n) => n + 1)}>Reconnect</Button>
        </p>
      ) : null}
      {health ? (
        <p role="status" className="mb-2 text-sm text-slate-600">
          Guest agent: <strong>{health.health}</strong>
          {health.last_seen ? ` (last seen ${new Date(health.last_seen).toLocaleTimeString()})` : ''}
          {health.health !== 'healthy' ? ' — showing host-side figures (VMM process)' : ''}
        </p>
      ) : null}
      <Chart samples={samples} title="Last 60 seconds" windowS={60} />
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
      return {
        items: h.points.map((p) => ({ at: p.at, cpu_percent: p.guest_cpu_pct, mem_used_bytes: p.mem_used_bytes })),
      };
    },
    retry: false,
  });
  if (q.isPending) return <Loading />;
  if (q.error) return <ErrorState error={q.error} what="Metrics history" />;
  return <Chart samples={q.data.items} title={`Last ${range}`} />;
}
