import { describe, expect, it } from 'vitest';
import { bucketize, pointFromSample, type StoredPoint } from './rollup.ts';

const p = (iso: string, over: Partial<StoredPoint> = {}): StoredPoint => ({
  at: new Date(iso),
  samples: 1,
  host_cpu_pct: null,
  guest_cpu_pct: null,
  rss_bytes: null,
  mem_used_bytes: null,
  mem_total_bytes: null,
  disk_read_bytes: null,
  disk_write_bytes: null,
  net_rx_bytes: null,
  net_tx_bytes: null,
  guest_health: null,
  ...over,
});

describe('rollup math', () => {
  it('averages gauges, keeps the last counter and health, and counts samples per 5-minute bucket', () => {
    const out = bucketize(
      [
        p('2024-01-01T00:04:50Z', { host_cpu_pct: 30, disk_read_bytes: 300, guest_health: 'unreachable' }),
        p('2024-01-01T00:00:10Z', { host_cpu_pct: 10, disk_read_bytes: 100, rss_bytes: 1001, guest_health: 'healthy' }),
        p('2024-01-01T00:02:00Z', { host_cpu_pct: 20, disk_read_bytes: null, rss_bytes: 2000 }),
        p('2024-01-01T00:05:00Z', { host_cpu_pct: 50, disk_read_bytes: 400 }),
      ],
      300_000,
    );
    expect(out).toEqual([
      p('2024-01-01T00:00:00Z', {
        samples: 3,
        host_cpu_pct: 20,
        rss_bytes: 1501,
        disk_read_bytes: 300,
        guest_health: 'unreachable',
      }),
      p('2024-01-01T00:05:00Z', { host_cpu_pct: 50, disk_read_bytes: 400 }),
    ]);
  });

  it('weights already rolled-up points by their sample count, so merging again is stable', () => {
    const rolled = p('2024-01-01T00:00:00Z', { samples: 29, host_cpu_pct: 10 });
    const late = p('2024-01-01T00:03:00Z', { host_cpu_pct: 40 });
    const [out] = bucketize([rolled, late], 300_000);
    expect(out).toMatchObject({ samples: 30, host_cpu_pct: 11 });
    expect(bucketize([out!], 300_000)).toEqual([out]);
  });

  it('a bucket with only gaps stays null rather than zero', () => {
    expect(bucketize([p('2024-01-01T00:00:00Z')], 300_000)[0]?.guest_cpu_pct).toBeNull();
  });

  it('stores guest figures only from a healthy guest group', () => {
    const host = {
      source: 'host' as const,
      cpu_pct: 5,
      rss_bytes: 10,
      disk_read_bytes: 1,
      disk_write_bytes: 2,
      net_rx_bytes: null,
      net_tx_bytes: null,
    };
    const row = pointFromSample({
      type: 'sample',
      vm_id: 'v',
      at: '2024-01-01T00:00:00.000Z',
      host,
      guest: { source: 'guest', health: 'unreachable', last_seen: null, metrics: null },
    });
    expect(row).toMatchObject({
      host_cpu_pct: 5,
      guest_cpu_pct: null,
      mem_used_bytes: null,
      guest_health: 'unreachable',
    });
  });
});
