import { readFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { isIP } from 'node:net';
import { type GuestHealth, type GuestMetricsValues, guestApi, type HostMetrics, type VmMetricsSample } from '@nqvm/api';
import { GUEST_AGENT_PORT } from '../guest/guest-client.ts';
import { withQmp } from '../vmm/qemu/qmp.ts';
import { guestValues } from './guest.ts';
import { cpuPercent, type ProcCpu, parseProcStat, parseRssBytes } from './proc-stat.ts';
import { BadInterfaceName, procTapCounters } from './tap-counters.ts';

/** What the sampler needs to know about a VM on this host. */
export interface ObservedVm {
  vmm: 'qemu' | 'firecracker';
  /** The VMM process; undefined when it is not running. */
  pid: number | undefined;
  /** QMP socket (QEMU). */
  controlSocket: string;
  /** The VM's TAP devices (validated names). */
  taps: string[];
  /** The address the guest agent reported; undefined until it did. */
  guestIp: string | undefined;
  /** Whether the guest agent was installed into this VM. */
  guestAgent: boolean;
}

/** Every host side effect of sampling, passed in so unit tests can give small fakes. */
export interface SamplerIo {
  readProc(pid: number, file: 'stat' | 'status'): Promise<string>;
  blockStats(controlSocket: string): Promise<{ readBytes: number; writeBytes: number }>;
  tapCounters(tap: string): Promise<{ rxBytes: number; txBytes: number }>;
  fetchGuest(url: string, timeoutMs: number): Promise<unknown>;
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface SamplerOptions {
  guestPort?: number;
  guestTimeoutMs?: number;
  /** A CPU reading older than this is not a useful baseline: sample over `cpuWindowMs` instead. */
  cpuBaselineMaxAgeMs?: number;
  cpuWindowMs?: number;
  qmpTimeoutMs?: number;
}

interface VmState {
  cpu?: { cpu: ProcCpu; atMs: number };
  lastSeen?: number;
}

interface BlockStatsEntry {
  stats?: { rd_bytes?: number; wr_bytes?: number };
}

/** The real thing: /proc, a short QMP connection, TAP counters from /proc/net/dev (else `tapCounters`), and fetch. */
export function systemSamplerIo(opts: {
  tapCounters(tap: string): Promise<{ rxBytes: number; txBytes: number }>;
  qmpTimeoutMs?: number;
}): SamplerIo {
  return {
    // procfs reads never wait on a disk; a sync read skips the thread pool and FileHandle work every second per VM.
    readProc: async (pid, file) => readFileSync(`/proc/${pid}/${file}`, 'utf8'),
    blockStats: (socket) =>
      withQmp(
        socket,
        async (qmp) => {
          const list = await qmp.execute<BlockStatsEntry[]>('query-blockstats', undefined, { timeoutMs: 1000 });
          return sumBlockStats(list);
        },
        // QMP serves one client at a time; never queue behind a lifecycle operation for a metric.
        { timeoutMs: opts.qmpTimeoutMs ?? 500 },
      ),
    tapCounters: (tap) =>
      procTapCounters(tap).catch((e: unknown) => {
        if (e instanceof BadInterfaceName) throw e;
        return opts.tapCounters(tap);
      }),
    fetchGuest: getJson,
    now: () => Date.now(),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  };
}

export function sumBlockStats(list: BlockStatsEntry[]): { readBytes: number; writeBytes: number } {
  let readBytes = 0;
  let writeBytes = 0;
  for (const d of list) {
    readBytes += d.stats?.rd_bytes ?? 0;
    writeBytes += d.stats?.wr_bytes ?? 0;
  }
  return { readBytes, writeBytes };
}

/** Takes one metrics sample of a VM: host view (process, QMP, TAPs) and the guest agent's own report. */
export class VmMetricsSampler {
  private readonly state = new Map<string, VmState>();

  constructor(
    private readonly io: SamplerIo,
    private readonly opts: SamplerOptions = {},
  ) {}

  async sample(vmId: string, vm: ObservedVm): Promise<VmMetricsSample> {
    const st = this.state.get(vmId) ?? {};
    this.state.set(vmId, st);
    const [host, guest] = await Promise.all([this.host(vm, st), this.guest(vm, st)]);
    return { type: 'sample', vm_id: vmId, at: new Date(this.io.now()).toISOString(), host, guest };
  }

  /** Drops what is remembered about a VM (its CPU baseline and guest last-seen). */
  forget(vmId: string): void {
    this.state.delete(vmId);
  }

  private async host(vm: ObservedVm, st: VmState): Promise<HostMetrics> {
    const [proc, disk, net] = await Promise.all([
      vm.pid === undefined ? null : this.proc(vm.pid, st).catch(() => null),
      vm.vmm === 'qemu' && vm.pid !== undefined ? this.io.blockStats(vm.controlSocket).catch(() => null) : null,
      vm.taps.length ? this.taps(vm.taps).catch(() => null) : null,
    ]);
    return {
      source: 'host',
      cpu_pct: proc?.cpuPct ?? null,
      rss_bytes: proc?.rss ?? null,
      disk_read_bytes: disk?.readBytes ?? null,
      disk_write_bytes: disk?.writeBytes ?? null,
      net_rx_bytes: net?.rxBytes ?? null,
      net_tx_bytes: net?.txBytes ?? null,
    };
  }

  private async proc(pid: number, st: VmState): Promise<{ cpuPct: number | null; rss: number | null }> {
    const read = async () => ({ cpu: parseProcStat(await this.io.readProc(pid, 'stat')), atMs: this.io.now() });
    let cur = await read();
    const maxAge = this.opts.cpuBaselineMaxAgeMs ?? 60_000;
    let prev = st.cpu;
    if (!prev || prev.cpu.startTime !== cur.cpu.startTime || cur.atMs - prev.atMs > maxAge || cur.atMs <= prev.atMs) {
      prev = cur;
      await this.io.sleep(this.opts.cpuWindowMs ?? 250);
      cur = await read();
    }
    st.cpu = cur;
    const rss = parseRssBytes(await this.io.readProc(pid, 'status'));
    return { cpuPct: cpuPercent(prev, cur), rss };
  }

  private async taps(taps: string[]): Promise<{ rxBytes: number; txBytes: number }> {
    let rxBytes = 0;
    let txBytes = 0;
    // A TAP's tx is what the host sent into the guest: the guest's rx. Report from the guest's side.
    for (const c of await Promise.all(taps.map((t) => this.io.tapCounters(t)))) {
      rxBytes += c.txBytes;
      txBytes += c.rxBytes;
    }
    return { rxBytes, txBytes };
  }

  private async guest(vm: ObservedVm, st: VmState): Promise<VmMetricsSample['guest']> {
    const lastSeen = () => (st.lastSeen === undefined ? null : new Date(st.lastSeen).toISOString());
    if (!vm.guestAgent) return { source: 'guest', health: 'not_installed', last_seen: null, metrics: null };
    let metrics: GuestMetricsValues | undefined;
    // Whether the guest agent answered at all: a reply that is not a metrics document makes it unhealthy.
    let answered = false;
    // The address reaches a URL: only a literal IP is used.
    if (vm.guestIp !== undefined && isIP(vm.guestIp) && vm.pid !== undefined) {
      const url = `http://${hostPart(vm.guestIp)}:${this.opts.guestPort ?? GUEST_AGENT_PORT}${guestApi.agent.metrics.path}`;
      const timeoutMs = this.opts.guestTimeoutMs ?? guestApi.agent.metrics.timeoutMs ?? 700;
      const body = await this.io.fetchGuest(url, timeoutMs).catch((e: unknown) => {
        answered = e instanceof GuestReplyRefused;
        return undefined;
      });
      metrics = guestValues(body);
      if (body !== undefined) answered = true;
    }
    const health: GuestHealth = metrics ? 'healthy' : answered ? 'unhealthy' : 'unreachable';
    if (metrics) st.lastSeen = this.io.now();
    return { source: 'guest', health, last_seen: lastSeen(), metrics: metrics ?? null };
  }
}

function hostPart(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip;
}

// One kept-alive connection per guest: a metrics poll every second per VM should not pay a TCP handshake each time.
const guestAgents = new Agent({ keepAlive: true, maxFreeSockets: 1, timeout: 5000 });

/** The guest agent's metrics document is about 1 KiB; anything this large is not one. */
export const GUEST_REPLY_MAX_BYTES = 64 * 1024;

/** The guest answered, but with something that is not a metrics reply (too large, too slow, not JSON, not 200). */
export class GuestReplyRefused extends Error {}

/**
 * GET a small JSON document with plain node:http (lighter than fetch for a poll every second per VM). Everything
 * from a guest is untrusted: the reply is cut off past `maxBytes` and the whole exchange past `timeoutMs`.
 */
export function getJson(url: string, timeoutMs: number, maxBytes = GUEST_REPLY_MAX_BYTES): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let answered = false;
    let done = false;
    const settle = (err: Error | undefined, value?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value);
    };
    const fail = (why: string) => settle(answered ? new GuestReplyRefused(why) : new Error(why));
    const deadline = setTimeout(() => fail(`guest agent did not answer within ${timeoutMs} ms`), timeoutMs);
    const req = get(url, { agent: guestAgents, timeout: timeoutMs }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let size = 0;
      if (Number(res.headers['content-length'] ?? 0) > maxBytes) return fail(`reply larger than ${maxBytes} bytes`);
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) return fail(`reply larger than ${maxBytes} bytes`);
        chunks.push(c);
      });
      res.on('error', (e) => settle(e));
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`guest agent answered ${res.statusCode}`);
        try {
          settle(undefined, JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          fail(`not JSON: ${(e as Error).message}`);
        }
      });
    });
    req.on('timeout', () => fail(`guest agent did not answer within ${timeoutMs} ms`));
    req.on('error', (e) => settle(e));
  });
}
