import type { FastifyInstance } from 'fastify';

type Labels = Record<string, string>;

/** A small Prometheus registry: counters and gauges with labels, rendered in text exposition format. */
export class MetricsRegistry {
  private readonly counters = new Map<string, { help: string; values: Map<string, number> }>();
  private readonly gauges = new Map<string, { help: string; collect: () => Promise<[Labels, number][]> }>();

  counter(name: string, help: string): (labels: Labels, by?: number) => void {
    const entry = { help, values: new Map<string, number>() };
    this.counters.set(name, entry);
    return (labels, by = 1) => {
      const key = labelString(labels);
      entry.values.set(key, (entry.values.get(key) ?? 0) + by);
    };
  }

  gauge(name: string, help: string, collect: () => Promise<[Labels, number][]>): void {
    this.gauges.set(name, { help, collect });
  }

  async render(): Promise<string> {
    const out: string[] = [];
    for (const [name, c] of this.counters) {
      out.push(`# HELP ${name} ${c.help}`, `# TYPE ${name} counter`);
      for (const [labels, v] of c.values) out.push(`${name}${labels} ${v}`);
    }
    for (const [name, g] of this.gauges) {
      out.push(`# HELP ${name} ${g.help}`, `# TYPE ${name} gauge`);
      for (const [labels, v] of await g.collect()) out.push(`${name}${labelString(labels)} ${v}`);
    }
    return `${out.join('\n')}\n`;
  }
}

function labelString(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

export function installHttpMetrics(app: FastifyInstance, registry: MetricsRegistry): void {
  const requests = registry.counter('nqvm_http_requests_total', 'HTTP requests by route and status');
  const seconds = registry.counter('nqvm_http_request_seconds_total', 'Time spent answering HTTP requests');
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests({ method: req.method, route, status: String(reply.statusCode) });
    seconds({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  registry.gauge('nqvm_process_resident_memory_bytes', 'Manager resident memory', async () => [
    [{}, process.memoryUsage().rss],
  ]);
  registry.gauge('nqvm_process_uptime_seconds', 'Manager uptime', async () => [[{}, Math.round(process.uptime())]]);
}
