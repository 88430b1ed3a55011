import { describe, expect, it } from 'vitest';
import {
  countProcesses,
  cpuPercent,
  diskUsage,
  MetricsSampler,
  ProcParseError,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  parseUptime,
} from '../../src/metrics';
import { fakeProc, fixture } from '../fixtures/proc-source';

describe('parseProcStat', () => {
  it('sums busy and idle (idle + iowait) ticks of the aggregate line and counts CPUs', () => {
    expect(parseProcStat(fixture('stat'))).toEqual({ busy: 4705 + 356 + 584 + 277, idle: 3699176 + 23060, count: 2 });
  });

  it('reads a 2.4-era line with only user nice system idle', () => {
    expect(parseProcStat('cpu  10 0 5 100\ncpu0 10 0 5 100\n')).toEqual({ busy: 15, idle: 100, count: 1 });
  });

  it('counts steal as busy and ignores guest time already inside user', () => {
    expect(parseProcStat('cpu  10 0 0 100 0 0 0 7 999 999\n')).toEqual({ busy: 17, idle: 100, count: 1 });
  });

  it('throws a ProcParseError when there is no aggregate cpu line', () => {
    expect(() => parseProcStat('cpu0 1 2 3 4\nintr 5\n')).toThrow(ProcParseError);
    expect(() => parseProcStat('')).toThrow(/no aggregate cpu line/);
  });
});

describe('cpuPercent', () => {
  it('is the busy share of elapsed ticks between two samples', () => {
    expect(cpuPercent(parseProcStat(fixture('stat')), parseProcStat(fixture('stat-later')))).toBe(57.14);
  });

  it('is null when no tick elapsed (zero delta)', () => {
    const s = parseProcStat(fixture('stat'));
    expect(cpuPercent(s, s)).toBeNull();
  });

  it('treats counters that went backwards as zero instead of reporting negative or >100 %', () => {
    expect(cpuPercent({ busy: 100, idle: 1000, count: 1 }, { busy: 150, idle: 990, count: 1 })).toBe(100);
    expect(cpuPercent({ busy: 2 ** 52, idle: 2 ** 52, count: 1 }, { busy: 5, idle: 5, count: 1 })).toBeNull();
    expect(cpuPercent({ busy: 2 ** 52, idle: 10, count: 1 }, { busy: 5, idle: 30, count: 1 })).toBe(0);
  });
});

describe('parseMeminfo', () => {
  it('computes used = MemTotal - MemAvailable in kB and percent', () => {
    expect(parseMeminfo(fixture('meminfo'))).toEqual({
      total_kb: 236924,
      available_kb: 181384,
      used_kb: 55540,
      used_percent: 23.44,
    });
  });

  it('estimates MemAvailable on kernels before 3.14 from free + buffers + cached + reclaimable slab', () => {
    const m = parseMeminfo(fixture('meminfo-3.10'));
    expect(m.available_kb).toBe(301220 + 10488 + 120304 + 16008);
    expect(m.used_kb).toBe(501808 - m.available_kb);
  });

  it('never reports more available than total', () => {
    expect(parseMeminfo('MemTotal: 100 kB\nMemAvailable: 150 kB\n')).toMatchObject({ available_kb: 100, used_kb: 0 });
  });

  it('throws when MemTotal is missing or zero', () => {
    expect(() => parseMeminfo('MemFree: 10 kB\n')).toThrow(/no MemTotal/);
    expect(() => parseMeminfo('MemTotal: 0 kB\n')).toThrow(ProcParseError);
  });
});

describe('parseLoadavg and parseUptime', () => {
  it('reads the 1, 5 and 15 minute load averages', () => {
    expect(parseLoadavg(fixture('loadavg'))).toEqual({ one: 0.08, five: 0.03, fifteen: 0.01 });
  });

  it('rejects a truncated loadavg', () => {
    expect(() => parseLoadavg('0.08 0.03')).toThrow(ProcParseError);
    expect(() => parseLoadavg('a b c 1/2 3')).toThrow(ProcParseError);
  });

  it('reads seconds since boot and rejects garbage', () => {
    expect(parseUptime(fixture('uptime'))).toBe(352.71);
    expect(() => parseUptime('')).toThrow(ProcParseError);
    expect(() => parseUptime('-1 3')).toThrow(ProcParseError);
  });
});

describe('parseNetDev', () => {
  it('lists interfaces except lo, including old-format lines with no space after the colon', () => {
    const net = parseNetDev(fixture('net-dev'));
    expect(net.interfaces).toEqual([
      { name: 'eth0', rx_bytes: 148213, rx_packets: 912, tx_bytes: 73450, tx_packets: 601 },
      { name: 'eth1', rx_bytes: 18446744073, rx_packets: 2101, tx_bytes: 9007, tx_packets: 41 },
    ]);
    expect(net.rx_bytes).toBe(148213 + 18446744073);
    expect(net.tx_bytes).toBe(73450 + 9007);
  });

  it('skips truncated lines and answers zero totals with no interfaces', () => {
    expect(parseNetDev('  eth0: 1 2 3\n')).toEqual({ interfaces: [], rx_bytes: 0, tx_bytes: 0 });
    expect(parseNetDev('')).toEqual({ interfaces: [], rx_bytes: 0, tx_bytes: 0 });
  });
});

describe('countProcesses and diskUsage', () => {
  it('counts only numeric /proc entries', () => {
    expect(countProcesses(['1', '42', 'self', 'meminfo', '7a', '900'])).toBe(3);
  });

  it('computes total, used and available bytes like df', () => {
    expect(diskUsage({ bsize: 4096, blocks: 1000, bfree: 400, bavail: 350 })).toEqual({
      total_bytes: 4_096_000,
      used_bytes: 2_457_600,
      available_bytes: 1_433_600,
      usage_percent: 63.16,
    });
    expect(diskUsage({ bsize: 4096, blocks: 0, bfree: 0, bavail: 0 }).usage_percent).toBe(0);
  });
});

describe('MetricsSampler', () => {
  it('reports 0 % CPU until a second sample, then the busy share between the last two', async () => {
    const proc = fakeProc();
    const sampler = new MetricsSampler(proc, () => new Date('2026-01-02T03:04:05.000Z'));
    await sampler.sampleCpu();
    expect((await sampler.collect()).cpu_usage_percent).toBe(0);
    proc.files['/proc/stat'] = fixture('stat-later');
    await sampler.sampleCpu();
    const m = await sampler.collect();
    expect(m).toMatchObject({
      cpu_usage_percent: 57.14,
      cpu_count: 2,
      memory_total_kb: 236924,
      memory_used_kb: 55540,
      memory_available_kb: 181384,
      memory_usage_percent: 23.44,
      uptime_seconds: 352.71,
      load_average: { one: 0.08, five: 0.03, fifteen: 0.01 },
      process_count: 4,
      disk: { total_bytes: 1073741824, used_bytes: 536870912, available_bytes: 483328000 },
      network: { rx_bytes: 148213 + 18446744073, tx_bytes: 73450 + 9007 },
      sampled_at: '2026-01-02T03:04:05.000Z',
    });
  });

  it('keeps the last CPU figure when a sample has no elapsed ticks', async () => {
    const proc = fakeProc();
    const sampler = new MetricsSampler(proc);
    await sampler.sampleCpu();
    proc.files['/proc/stat'] = fixture('stat-later');
    await sampler.sampleCpu();
    await sampler.sampleCpu();
    expect((await sampler.collect()).cpu_usage_percent).toBe(57.14);
  });

  it('rejects collect() when a required /proc file is missing', async () => {
    const proc = fakeProc();
    delete proc.files['/proc/meminfo'];
    await expect(new MetricsSampler(proc).collect()).rejects.toThrow(/meminfo/);
  });
});
