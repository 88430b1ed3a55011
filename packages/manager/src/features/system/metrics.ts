import type { FastifyInstance } from 'fastify';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

type Labels = Record<string, string>;
type SeriesType = 'gauge' | 'counter';

/** Seconds buckets for HTTP answers: most are milliseconds, uploads and long waits reach minutes. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
/** Seconds buckets for VM boots and snapshots under KVM (sub-second) and TCG (tens of seconds). */
export const OPERATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160];

/**
 * The manager's Prometheus registry (prom-client): the standard process and Node.js metrics (CPU, memory, file
 * descriptors, event-loop lag, GC), HTTP counters and latency histograms, and series read from the database at
 * scrape time. Counters are named `_total`; histograms observe seconds.
 */
export class MetricsRegistry {
  readonly registry = new Registry();
  readonly contentType = this.registry.contentType;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets = OPERATION_BUCKETS) {
    return new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]) {
    return new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  /**
   * Series whose labels are only known when scraped (one per VM), read by `collect` on every scrape. A cumulative
   * value (bytes since the VMM started) is a `counter` and its name must end in `_total`.
   */
  collected(name: string, help: string, collect: () => Promise<[Labels, number][]>, type: SeriesType = 'gauge'): void {
    if (type === 'counter' && !name.endsWith('_total')) throw new Error(`counter ${name} must end in _total`);
    this.registry.registerMetric({
      name,
      get: async () => ({
        name,
        help,
        type,
        aggregator: 'sum',
        values: (await collect()).map(([labels, value]) => ({ labels, value })),
      }),
    } as never);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Requests and their latency by method, route pattern (never the raw URL: bounded label values) and status. */
export function installHttpMetrics(app: FastifyInstance, metrics: MetricsRegistry): void {
  const labels = ['method', 'route', 'status_code'] as const;
  const requests = metrics.counter('nqvm_http_requests_total', 'HTTP requests answered', labels);
  const duration = metrics.histogram(
    'nqvm_http_request_duration_seconds',
    'Time to answer an HTTP request',
    labels,
    HTTP_BUCKETS,
  );
  app.addHook('onResponse', async (req, reply) => {
    const l = { method: req.method, route: req.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) };
    requests.inc(l);
    duration.observe(l, reply.elapsedTime / 1000);
  });
}
