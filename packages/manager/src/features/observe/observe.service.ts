import type { MetricsHistory, MetricsHistoryQuery, ShellCredentials, VmMetricsSample } from '@nqvm/api';
import type { FastifyBaseLogger } from 'fastify';
import type { Database } from '../../db/client.ts';
import { BadRequest, Conflict } from '../../domain/errors.ts';
import type { MetricsRegistry } from '../system/metrics.ts';
import type { AgentTarget } from '../vms/agent-client.ts';
import type { ObserveAgent } from './observe.agent.ts';
import type { LatestSample, ObserveRepository } from './observe.repository.ts';
import { BUCKET_MS, bucketize, pointFromSample, type StoredPoint, toApiPoint } from './rollup.ts';

// Only one manager samples at a time: each history tick runs under this advisory lock or is skipped.
const SAMPLER_LOCK = 7_346_003;
const DAY_MS = 86_400_000;
const MAX_POINTS = 20_000;

/** What this feature needs of the VMs feature. */
export interface VmLookup {
  row(id: string): Promise<{ id: string; hostId: string | null; state: string }>;
  agentTarget(hostId: string): Promise<AgentTarget>;
  shellCredentials(id: string): Promise<{ username: string | null; password: string | null }>;
}

export interface ObserveOptions {
  sampleIntervalMs: number;
  retentionDays: number;
  /** Raw samples older than this are rolled up into 5-minute points. */
  rawKeepMs?: number;
}

export class ObserveService {
  constructor(
    private readonly repo: ObserveRepository,
    private readonly vms: VmLookup,
    private readonly agent: ObserveAgent,
    private readonly database: Database,
    private readonly opts: ObserveOptions,
    private readonly log: FastifyBaseLogger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  shell(id: string): Promise<ShellCredentials> {
    return this.vms.shellCredentials(id);
  }

  /** The host agent that runs the VM; a VM on no host has no console or metrics to show. */
  async target(vmId: string): Promise<AgentTarget> {
    const row = await this.vms.row(vmId);
    if (!row.hostId) throw new Conflict('vm_not_placed', `vm ${vmId} is not placed on a host`);
    return this.vms.agentTarget(row.hostId);
  }

  dial(t: AgentTarget, vmId: string, stream: 'console' | 'metrics') {
    return this.agent.dial(t, vmId, stream);
  }

  /** One sample now from the VM's host agent, stored in the history. */
  async flush(vmId: string): Promise<VmMetricsSample> {
    const sample = await this.agent.sample(await this.target(vmId), vmId);
    await this.repo.insert(vmId, pointFromSample(sample));
    return sample;
  }

  async history(vmId: string, q: MetricsHistoryQuery): Promise<MetricsHistory> {
    await this.vms.row(vmId);
    const to = q.to ? new Date(q.to) : this.now();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 3_600_000);
    if (!(from < to)) throw new BadRequest('invalid_range', '`from` must be before `to`', 'query.from');
    const step = q.step ?? 'raw';
    const rows = await this.repo.range(vmId, from, to, MAX_POINTS);
    const points = step === 'raw' ? rows : bucketize(rows, BUCKET_MS[step]);
    return { vm_id: vmId, from: from.toISOString(), to: to.toISOString(), step, points: points.map(toApiPoint) };
  }

  /** Samples every running VM, then rolls up and prunes; skipped unless this manager holds the lock. */
  async tick(): Promise<boolean> {
    return this.database.withSession(async (s) => {
      const [lock] = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [SAMPLER_LOCK]);
      if (!lock?.ok) return false;
      try {
        await Promise.all(
          (await this.repo.sampled()).map(async (vm) => {
            try {
              const sample = await this.agent.sample(await this.vms.agentTarget(vm.hostId), vm.id);
              await this.repo.insert(vm.id, pointFromSample(sample));
            } catch (err) {
              this.log.debug({ err, vm_id: vm.id }, 'metrics sample failed');
            }
          }),
        );
        await this.rollup();
        await this.prune();
        return true;
      } finally {
        await s.query('SELECT pg_advisory_unlock($1)', [SAMPLER_LOCK]);
      }
    });
  }

  /**
   * Rolls raw samples older than 24 h into 5-minute points, one hour-aligned window at a time so a bucket is
   * never split; existing points of the window are merged in, so running it twice changes nothing.
   */
  async rollup(maxWindows = 48): Promise<number> {
    const bucket = BUCKET_MS['5m'];
    const cutoff = new Date(Math.floor((this.now().getTime() - (this.opts.rawKeepMs ?? DAY_MS)) / bucket) * bucket);
    let rolled = 0;
    for (let i = 0; i < maxWindows; i++) {
      const oldest = await this.repo.oldestRaw(cutoff);
      if (!oldest) break;
      const from = new Date(Math.floor(oldest.getTime() / 3_600_000) * 3_600_000);
      const to = new Date(Math.min(from.getTime() + 3_600_000, cutoff.getTime()));
      const byVm = new Map<string, StoredPoint[]>();
      for (const r of await this.repo.window(from, to)) byVm.set(r.vmId, [...(byVm.get(r.vmId) ?? []), r.point]);
      const rollups = [...byVm].flatMap(([vmId, ps]) => bucketize(ps, bucket).map((point) => ({ vmId, point })));
      await this.repo.replaceWithRollups(from, to, rollups);
      rolled += rollups.length;
    }
    return rolled;
  }

  prune(): Promise<number> {
    return this.repo.deleteOlderThan(new Date(this.now().getTime() - this.opts.retentionDays * DAY_MS));
  }

  /** Per-VM series on the manager's /metrics from each VM's latest stored sample (last 5 minutes). */
  registerGauges(registry: MetricsRegistry): void {
    let cache: { at: number; rows: Promise<LatestSample[]> } | undefined;
    const latest = () => {
      // One query per scrape, shared by every gauge below.
      if (!cache || Date.now() - cache.at > 1000)
        cache = { at: Date.now(), rows: this.repo.latest(new Date(this.now().getTime() - 300_000)) };
      return cache.rows;
    };
    const series = (
      name: string,
      help: string,
      value: (r: LatestSample) => number | null,
      type: 'gauge' | 'counter' = 'gauge',
    ) =>
      registry.collected(
        name,
        help,
        async () =>
          (await latest()).flatMap((r) => {
            const v = value(r);
            return v === null ? [] : [[{ vm: r.vm_name, vm_id: r.vm_id, host: r.host, owner: r.owner }, v]];
          }),
        type,
      );
    series('nqvm_vm_host_cpu_percent', 'VMM process CPU, percent of one host core', (r) => r.host_cpu_pct);
    series('nqvm_vm_guest_cpu_percent', 'Guest CPU busy share reported by the guest agent', (r) => r.guest_cpu_pct);
    series('nqvm_vm_rss_bytes', 'VMM process resident memory', (r) => r.rss_bytes);
    series('nqvm_vm_memory_used_bytes', 'Guest memory in use', (r) => r.mem_used_bytes);
    series('nqvm_vm_memory_total_bytes', 'Guest memory total', (r) => r.mem_total_bytes);
    // Cumulative since the VMM started: counters, so rate() sees a VMM restart as a reset.
    const cumulative = (name: string, help: string, value: (r: LatestSample) => number | null) =>
      series(name, help, value, 'counter');
    cumulative('nqvm_vm_disk_read_bytes_total', 'Bytes read by the VM disks', (r) => r.disk_read_bytes);
    cumulative('nqvm_vm_disk_write_bytes_total', 'Bytes written by the VM disks', (r) => r.disk_write_bytes);
    cumulative('nqvm_vm_network_rx_bytes_total', 'Bytes received by the VM on its NICs', (r) => r.net_rx_bytes);
    cumulative('nqvm_vm_network_tx_bytes_total', 'Bytes sent by the VM on its NICs', (r) => r.net_tx_bytes);
    series('nqvm_vm_guest_healthy', '1 when the guest agent answered the latest sample', (r) =>
      r.guest_health === null ? null : r.guest_health === 'healthy' ? 1 : 0,
    );
  }

  /** Starts the background history sampler; returns its stop function. */
  start(): () => Promise<void> {
    let running: Promise<unknown> = Promise.resolve();
    const timer = setInterval(() => {
      running = this.tick().catch((err) => this.log.error({ err }, 'metrics tick failed'));
    }, this.opts.sampleIntervalMs);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await running;
    };
  }
}
