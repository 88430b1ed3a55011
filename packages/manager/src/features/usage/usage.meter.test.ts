import { describe, expect, it } from 'vitest';
import { type LogSpan, meter, usageCsv } from './usage.meter.ts';

const P = '00000000-0000-4000-8000-000000000001';
const at = (iso: string) => new Date(`2026-12-03T${iso}Z`);
const vm = (from: string, until: string | null, active: boolean): LogSpan => ({
  resourceType: 'vm',
  resourceId: 'vm-1',
  name: 'web,1',
  at: at(from),
  until: until === null ? null : at(until),
  active,
  vcpu: 2,
  memMib: 1024,
  diskBytes: 2 * 1024 ** 3,
});

describe('meter', () => {
  it('splits a running interval over hour buckets and clips it to the window', () => {
    const u = meter(P, [vm('09:00:00', '09:30:00', false), vm('09:30:00', '11:15:00', true)], [], {
      from: at('09:00:00'),
      to: at('11:00:00'),
      now: at('12:00:00'),
      granularity: 'hour',
    });
    expect(u.buckets.map((b) => b.vcpu_seconds)).toEqual([2 * 1800, 2 * 3600]);
    expect(u.total.memory_gib_seconds).toBe(5400);
    expect(u.total.disk_gib_hours).toBeCloseTo(4, 6);
    expect(u.resources[0]!.buckets).toHaveLength(2);
  });

  it('ends an open interval at now, and counts NIC bytes from counter deltas, a reset counting from zero', () => {
    const u = meter(
      P,
      [vm('09:00:00', null, true)],
      [
        { vmId: 'vm-1', at: at('08:59:00'), rx: 100, tx: 10 },
        { vmId: 'vm-1', at: at('09:10:00'), rx: 300, tx: 30 },
        { vmId: 'vm-1', at: at('09:20:00'), rx: 50, tx: 5 },
      ],
      { from: at('09:00:00'), to: at('10:00:00'), now: at('09:30:00'), granularity: 'day' },
    );
    expect(u.total.vcpu_seconds).toBe(2 * 1800);
    expect(u.total.network_rx_bytes).toBe(200 + 50);
    expect(u.total.network_tx_bytes).toBe(20 + 5);
    const csv = usageCsv(u).split('\r\n');
    expect(csv[1]).toContain(',vm,vm-1,"web,1",3600,');
  });
});
