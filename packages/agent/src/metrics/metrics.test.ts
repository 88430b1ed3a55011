import { describe, expect, it } from 'vitest';
import { guestValues } from './guest.ts';
import { cpuPercent, parseProcStat, parseRssBytes } from './proc-stat.ts';
import { type ObservedVm, type SamplerIo, sumBlockStats, VmMetricsSampler } from './sampler.ts';
import { BadInterfaceName, procTapCounters } from './tap-counters.ts';

const stat = (utime: number, stime: number, start = 4242, comm = 'qemu-system-x86') =>
  `1234 (${comm}) S 1 1234 1234 0 -1 4194560 500 0 0 0 ${utime} ${stime} 0 0 20 0 3 0 ${start} 1000000 5000 18446744073709551615`;

describe('proc stat CPU math', () => {
  it('reads utime+stime and start time, even when the command name holds spaces and parentheses', () => {
    expect(parseProcStat(stat(120, 30, 99, 'odd (name) x'))).toEqual({ ticks: 150, startTime: 99 });
  });

  it('turns a tick delta into percent of one core over the wall time between readings', () => {
    const a = { cpu: { ticks: 100, startTime: 1 }, atMs: 0 };
    expect(cpuPercent(a, { cpu: { ticks: 150, startTime: 1 }, atMs: 1000 })).toBe(50);
    expect(cpuPercent(a, { cpu: { ticks: 300, startTime: 1 }, atMs: 1000 })).toBe(200);
    expect(cpuPercent(a, { cpu: { ticks: 100, startTime: 1 }, atMs: 10_000 })).toBe(0);
  });

  it('gives no figure for a reused pid or no elapsed time', () => {
    const a = { cpu: { ticks: 100, startTime: 1 }, atMs: 0 };
    expect(cpuPercent(a, { cpu: { ticks: 150, startTime: 2 }, atMs: 1000 })).toBeNull();
    expect(cpuPercent(a, { cpu: { ticks: 150, startTime: 1 }, atMs: 0 })).toBeNull();
  });

  it('reads VmRSS in bytes', () => {
    expect(parseRssBytes('Name:\tqemu\nVmRSS:\t  2048 kB\n')).toBe(2048 * 1024);
    expect(parseRssBytes('Name:\tzombie\n')).toBeNull();
  });
});

const guestBody = {
  cpu_usage_percent: 12.5,
  cpu_count: 1,
  memory_usage_percent: 25,
  memory_used_kb: 1000,
  memory_total_kb: 4000,
  memory_available_kb: 3000,
  uptime_seconds: 33,
  load_average: { one: 0.5, five: 0.2, fifteen: 0.1 },
  process_count: 17,
  disk: { total_bytes: 100, used_bytes: 40, available_bytes: 60, usage_percent: 40 },
  network: { interfaces: [], rx_bytes: 7, tx_bytes: 9 },
  sampled_at: '2024-01-01T00:00:00.000Z',
};

describe('guest metrics mapping', () => {
  it('maps the guest agent JSON to bytes and flat names', () => {
    expect(guestValues(guestBody)).toEqual({
      cpu_pct: 12.5,
      cpu_count: 1,
      mem_used_bytes: 1000 * 1024,
      mem_total_bytes: 4000 * 1024,
      mem_available_bytes: 3000 * 1024,
      uptime_s: 33,
      load_1: 0.5,
      process_count: 17,
      disk_used_bytes: 40,
      disk_total_bytes: 100,
      net_rx_bytes: 7,
      net_tx_bytes: 9,
    });
  });

  it('refuses anything that is not that shape', () => {
    expect(guestValues({ ...guestBody, memory_used_kb: 'lots' })).toBeUndefined();
    expect(guestValues('<html>')).toBeUndefined();
    expect(guestValues(null)).toBeUndefined();
  });
});

describe('VmMetricsSampler frames', () => {
  function fakeIo(over: Partial<SamplerIo> = {}) {
    let now = 1_700_000_000_000;
    let ticks = 1000;
    const calls: string[] = [];
    const io: SamplerIo = {
      readProc: async (_pid, file) => {
        calls.push(file);
        if (file === 'status') return 'VmRSS:\t 51200 kB\n';
        ticks += 25;
        return stat(ticks, 0);
      },
      blockStats: async () => ({ readBytes: 4096, writeBytes: 512 }),
      tapCounters: async () => ({ rxBytes: 10, txBytes: 20 }),
      fetchGuest: async () => guestBody,
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
      ...over,
    };
    return { io, calls, advance: (ms: number) => (now += ms) };
  }
  const vm: ObservedVm = {
    vmm: 'qemu',
    pid: 1234,
    controlSocket: '/x/qmp.sock',
    taps: ['nqt0'],
    guestIp: '10.0.0.2',
    guestAgent: true,
  };

  it('marks each group with its source and reports host and guest figures', async () => {
    const { io } = fakeIo();
    const s = await new VmMetricsSampler(io).sample('vm-1', vm);
    expect(s).toMatchObject({
      type: 'sample',
      vm_id: 'vm-1',
      host: {
        source: 'host',
        cpu_pct: 100,
        rss_bytes: 51200 * 1024,
        disk_read_bytes: 4096,
        disk_write_bytes: 512,
        net_rx_bytes: 20,
        net_tx_bytes: 10,
      },
      guest: { source: 'guest', health: 'healthy', last_seen: s.at, metrics: { cpu_pct: 12.5 } },
    });
  });

  it('measures CPU against the previous sample when it is recent, without waiting', async () => {
    const f = fakeIo();
    const sampler = new VmMetricsSampler(f.io);
    await sampler.sample('vm-1', vm);
    f.advance(1000);
    f.calls.length = 0;
    const s = await sampler.sample('vm-1', vm);
    expect(f.calls.filter((c) => c === 'stat')).toHaveLength(1);
    expect(s.host.cpu_pct).toBe(25);
  });

  it('keeps host metrics when the guest agent is down and says when it was last seen', async () => {
    let up = true;
    const f = fakeIo({
      fetchGuest: async () => {
        if (!up) throw new Error('timeout');
        return guestBody;
      },
    });
    const sampler = new VmMetricsSampler(f.io);
    const first = await sampler.sample('vm-1', vm);
    up = false;
    f.advance(5000);
    const down = await sampler.sample('vm-1', vm);
    expect(down.guest).toEqual({ source: 'guest', health: 'unreachable', last_seen: first.at, metrics: null });
    expect(down.host.rss_bytes).toBeGreaterThan(0);
  });

  it('says not_installed without polling when the VM has no guest agent, and null where the host has nothing', async () => {
    let polled = false;
    const f = fakeIo({
      fetchGuest: async () => {
        polled = true;
        return guestBody;
      },
      blockStats: async () => {
        throw new Error('QMP busy');
      },
    });
    const s = await new VmMetricsSampler(f.io).sample('vm-1', { ...vm, guestAgent: false, taps: [] });
    expect(polled).toBe(false);
    expect(s.guest).toEqual({ source: 'guest', health: 'not_installed', last_seen: null, metrics: null });
    expect(s.host).toMatchObject({ disk_read_bytes: null, net_rx_bytes: null, rss_bytes: 51200 * 1024 });
  });

  it('never builds a guest URL from something that is not an IP', async () => {
    const urls: string[] = [];
    const f = fakeIo({
      fetchGuest: async (url) => {
        urls.push(url);
        return guestBody;
      },
    });
    const s = await new VmMetricsSampler(f.io).sample('vm-1', { ...vm, guestIp: 'evil.example/$(touch /tmp/MARK)' });
    expect(urls).toEqual([]);
    expect(s.guest.health).toBe('unreachable');
  });

  it('sums QMP block stats over all drives', () => {
    expect(
      sumBlockStats([{ stats: { rd_bytes: 1, wr_bytes: 2 } }, { stats: { rd_bytes: 10, wr_bytes: 20 } }, {}]),
    ).toEqual({
      readBytes: 11,
      writeBytes: 22,
    });
  });

  it('a frame stays small', async () => {
    const s = await new VmMetricsSampler(fakeIo().io).sample('0b6c2d4e-5f70-4a81-92b3-c4d5e6f70819', vm);
    expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThan(700);
  });
});

describe('TAP counters from /proc/net/dev', () => {
  const netDev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0
nqt-1a2b3c4d-0:    1234      10    0    0    0     0          0         0       99       1    0    0    0     0       0          0
`;

  it('reads rx/tx bytes of the named TAP', async () => {
    expect(await procTapCounters('nqt-1a2b3c4d-0', async () => netDev)).toEqual({ rxBytes: 1234, txBytes: 99 });
    await expect(procTapCounters('nqt-ffffffff-0', async () => netDev)).rejects.toThrow(/not in \/proc\/net\/dev/);
  });

  it('refuses names with slashes, spaces or shell payloads before reading anything', async () => {
    let reads = 0;
    const read = async () => {
      reads++;
      return netDev;
    };
    for (const bad of ['../../etc', 'a/b', '$(touch /tmp/MARK)', 'x;rm -rf /', '`id`', '', 'waytoolongname0123'])
      await expect(procTapCounters(bad, read)).rejects.toBeInstanceOf(BadInterfaceName);
    expect(reads).toBe(0);
  });
});
