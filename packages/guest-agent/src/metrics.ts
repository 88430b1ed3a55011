import { readdir, readFile, statfs } from 'node:fs/promises';
import type { DiskUsage, GuestMetrics, InterfaceCounters, LoadAverage, NetworkTotals } from './types';

export class ProcParseError extends Error {
  constructor(file: string, detail: string) {
    super(`cannot parse ${file}: ${detail}`);
    this.name = 'ProcParseError';
  }
}

/** Aggregate CPU time from the `cpu ` line of /proc/stat, in USER_HZ ticks. */
export interface CpuTimes {
  busy: number;
  idle: number;
  /** Number of `cpuN` lines, i.e. online CPUs. */
  count: number;
}

export interface MemoryUsage {
  total_kb: number;
  available_kb: number;
  used_kb: number;
  used_percent: number;
}

/** What the sampler needs from the host; tests pass fixtures, production passes node:fs. */
export interface ProcSource {
  readFile(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
  statfs(path: string): Promise<{ bsize: number; blocks: number; bfree: number; bavail: number }>;
}

export const nodeProcSource: ProcSource = {
  readFile: (path) => readFile(path, 'utf8'),
  readdir: (path) => readdir(path),
  statfs: (path) => statfs(path),
};

const round2 = (n: number): number => Math.round(n * 100) / 100;
const percent = (part: number, whole: number): number => (whole > 0 ? round2((100 * part) / whole) : 0);

function toNumber(raw: string | undefined): number {
  if (raw === undefined) return 0;
  const n = Number(raw);
  return Number.isFinite(n) ? n : 0;
}

export function parseProcStat(text: string): CpuTimes {
  let times: number[] | undefined;
  let count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('cpu ')) times = line.trim().split(/\s+/).slice(1).map(toNumber);
    else if (/^cpu\d+\s/.test(line)) count++;
  }
  if (!times || times.length < 4) throw new ProcParseError('/proc/stat', 'no aggregate cpu line');
  // user nice system idle iowait irq softirq steal; guest/guest_nice are already inside user/nice.
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = times;
  return { busy: user + nice + system + irq + softirq + steal, idle: idle + iowait, count: Math.max(count, 1) };
}

/**
 * Busy share of CPU time between two samples, 0–100, or null when nothing can be said (no time passed).
 * A counter that went backwards (iowait does on NO_HZ kernels; a restored snapshot resets all) counts as zero.
 */
export function cpuPercent(prev: CpuTimes, cur: CpuTimes): number | null {
  const busy = Math.max(0, cur.busy - prev.busy);
  const idle = Math.max(0, cur.idle - prev.idle);
  const total = busy + idle;
  if (total === 0) return null;
  return Math.min(100, percent(busy, total));
}

/** Memory in kB; used = MemTotal − MemAvailable, estimating MemAvailable on kernels older than 3.14. */
export function parseMeminfo(text: string): MemoryUsage {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([\w()]+):\s+(\d+)/.exec(line);
    if (m?.[1] && m[2]) fields.set(m[1], Number(m[2]));
  }
  const total = fields.get('MemTotal');
  if (total === undefined || total <= 0) throw new ProcParseError('/proc/meminfo', 'no MemTotal');
  const estimated =
    (fields.get('MemFree') ?? 0) +
    (fields.get('Buffers') ?? 0) +
    (fields.get('Cached') ?? 0) +
    (fields.get('SReclaimable') ?? 0);
  const available = Math.min(total, fields.get('MemAvailable') ?? estimated);
  const used = total - available;
  return { total_kb: total, available_kb: available, used_kb: used, used_percent: percent(used, total) };
}

export function parseLoadavg(text: string): LoadAverage {
  const parts = text.trim().split(/\s+/).slice(0, 3).map(Number);
  if (parts.length < 3 || parts.some((n) => !Number.isFinite(n))) {
    throw new ProcParseError('/proc/loadavg', `unexpected ${JSON.stringify(text.slice(0, 40))}`);
  }
  const [one = 0, five = 0, fifteen = 0] = parts;
  return { one, five, fifteen };
}

/** Seconds since boot, from the first field of /proc/uptime. */
export function parseUptime(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)(?:\s|$)/.exec(text);
  if (!m?.[1]) throw new ProcParseError('/proc/uptime', 'no uptime');
  return Number(m[1]);
}

/** Per-interface counters from /proc/net/dev, loopback excluded; malformed lines are skipped. */
export function parseNetDev(text: string): NetworkTotals {
  const interfaces: InterfaceCounters[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    // Old kernels print `eth0:123` with no space once the counter is wide, so split on the colon only.
    const values = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (name === '' || name === 'lo' || values.length < 10 || values.some((n) => !Number.isFinite(n))) continue;
    interfaces.push({
      name,
      rx_bytes: values[0] ?? 0,
      rx_packets: values[1] ?? 0,
      tx_bytes: values[8] ?? 0,
      tx_packets: values[9] ?? 0,
    });
  }
  return {
    interfaces,
    rx_bytes: interfaces.reduce((sum, i) => sum + i.rx_bytes, 0),
    tx_bytes: interfaces.reduce((sum, i) => sum + i.tx_bytes, 0),
  };
}

export function countProcesses(entries: readonly string[]): number {
  return entries.filter((e) => /^\d+$/.test(e)).length;
}

/** Same arithmetic as df: usage is used / (used + available), since root-reserved blocks are not usable. */
export function diskUsage(s: { bsize: number; blocks: number; bfree: number; bavail: number }): DiskUsage {
  const total = s.blocks * s.bsize;
  const used = Math.max(0, s.blocks - s.bfree) * s.bsize;
  const available = s.bavail * s.bsize;
  return {
    total_bytes: total,
    used_bytes: used,
    available_bytes: available,
    usage_percent: percent(used, used + available),
  };
}

/**
 * Reads /proc on demand, except CPU: `sampleCpu()` runs in the background so `collect()` answers at once
 * with the busy share over the last interval.
 */
export class MetricsSampler {
  private prev: CpuTimes | undefined;
  private cpu = 0;
  private cpus = 1;

  constructor(
    private readonly source: ProcSource = nodeProcSource,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async sampleCpu(): Promise<void> {
    const cur = parseProcStat(await this.source.readFile('/proc/stat'));
    this.cpus = cur.count;
    if (this.prev) {
      const p = cpuPercent(this.prev, cur);
      if (p !== null) this.cpu = p;
    }
    this.prev = cur;
  }

  async collect(): Promise<GuestMetrics> {
    const [meminfo, loadavg, uptime, netdev, procEntries, fs] = await Promise.all([
      this.source.readFile('/proc/meminfo'),
      this.source.readFile('/proc/loadavg'),
      this.source.readFile('/proc/uptime'),
      this.source.readFile('/proc/net/dev'),
      this.source.readdir('/proc'),
      this.source.statfs('/'),
    ]);
    const mem = parseMeminfo(meminfo);
    return {
      cpu_usage_percent: this.cpu,
      cpu_count: this.cpus,
      memory_usage_percent: mem.used_percent,
      memory_used_kb: mem.used_kb,
      memory_total_kb: mem.total_kb,
      memory_available_kb: mem.available_kb,
      uptime_seconds: parseUptime(uptime),
      load_average: parseLoadavg(loadavg),
      process_count: countProcesses(procEntries),
      disk: diskUsage(fs),
      network: parseNetDev(netdev),
      sampled_at: this.now().toISOString(),
    };
  }
}
