import type { AgentVmStatus } from '@nqvm/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
/** VM boots and snapshots: sub-second under KVM, tens of seconds under TCG. */
const OPERATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160];

/** Agent routes whose answer ends an operation worth a histogram of its own (successful answers only). */
const OPERATIONS: Record<string, { histogram: 'boot' | 'snapshot'; op: string }> = {
  'POST /agent/v1/vms/:id/boot': { histogram: 'boot', op: 'boot' },
  'POST /agent/v1/vms/:id/snapshots/:sid': { histogram: 'snapshot', op: 'create' },
  'POST /agent/v1/snapshots/:sid/instantiate': { histogram: 'snapshot', op: 'restore' },
};

/**
 * The agent's own Prometheus metrics, served at `/metrics` behind the host secret: the standard process and
 * Node.js metrics (event-loop lag among them), HTTP requests and latency, VM boot and snapshot durations as the
 * agent sees them (request to VMM running / snapshot written), and the VMs it runs by state.
 */
export class AgentMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'method' | 'route' | 'status_code'>;
  private readonly latency: Histogram<'method' | 'route' | 'status_code'>;
  private readonly boot: Histogram<'outcome'>;
  private readonly snapshot: Histogram<'op' | 'outcome'>;

  constructor(vms: { list(): AgentVmStatus[] }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const labelNames = ['method', 'route', 'status_code'] as const;
    this.requests = new Counter({
      name: 'nqvm_http_requests_total',
      help: 'HTTP requests answered',
      labelNames,
      registers,
    });
    this.latency = new Histogram({
      name: 'nqvm_http_request_duration_seconds',
      help: 'Time to answer an HTTP request',
      labelNames,
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.boot = new Histogram({
      name: 'nqvm_vm_boot_duration_seconds',
      help: "From the agent's boot request to the VMM running the guest (disk prepared, TAPs up, vCPUs released)",
      labelNames: ['outcome'],
      buckets: OPERATION_BUCKETS,
      registers,
    });
    this.snapshot = new Histogram({
      name: 'nqvm_snapshot_duration_seconds',
      help: 'Time to write a snapshot (op=create) or to restore a VM from one (op=restore)',
      labelNames: ['op', 'outcome'],
      buckets: OPERATION_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'nqvm_agent_vms',
      help: 'VMs this agent runs, by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = { running: 0, paused: 0, stopped: 0 };
        for (const vm of vms.list()) counts[vm.state]++;
        for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
      },
    });
  }

  /** Counts an answer of the agent's API: the root app's `onResponse` hook. */
  readonly onResponse = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const seconds = reply.elapsedTime / 1000;
    const labels = { method: req.method, route, status_code: String(status) };
    this.requests.inc(labels);
    this.latency.observe(labels, seconds);
    const op = OPERATIONS[`${req.method} ${route}`];
    if (!op || status === 401 || status === 404) return;
    const outcome = status < 400 ? 'ok' : 'error';
    if (op.histogram === 'boot') this.boot.observe({ outcome }, seconds);
    else this.snapshot.observe({ op: op.op, outcome }, seconds);
  };

  /** `GET /metrics`, mounted inside the host-secret scope. */
  routes(api: FastifyInstance): void {
    api.get('/metrics', async (_req, reply) =>
      reply.type(this.registry.contentType).send(await this.registry.metrics()),
    );
  }
}
