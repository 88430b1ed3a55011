import { qemuIds, throttleFromRateLimiter } from '../vmm/qemu/args.ts';
import { withQmp } from '../vmm/qemu/qmp.ts';
import type { RateLimiter } from '../vmm/types.ts';

const MIB = 1024 * 1024;
// QEMU reports an unavailable statistic as 2^64 - 1.
const UNAVAILABLE = 2 ** 64 - 1;

/** QMP `block_set_io_throttle` arguments for a Firecracker rate limiter (all six base rates required; 0 = none). */
export function ioThrottleArgs(driveId: string, rl: RateLimiter | null): Record<string, string | number> {
  const t = throttleFromRateLimiter('rate_limiter', rl ?? undefined);
  const args: Record<string, string | number> = {
    device: qemuIds.drive(driveId),
    bps: t['bps-total'] ?? 0,
    bps_rd: 0,
    bps_wr: 0,
    iops: t['iops-total'] ?? 0,
    iops_rd: 0,
    iops_wr: 0,
  };
  if (t['bps-total-max'] !== undefined) {
    args.bps_max = t['bps-total-max'];
    args.bps_max_length = t['bps-total-max-length'] ?? 1;
  }
  if (t['iops-total-max'] !== undefined) {
    args.iops_max = t['iops-total-max'];
    args.iops_max_length = t['iops-total-max-length'] ?? 1;
  }
  return args;
}

export async function setDriveThrottle(qmpSocket: string, driveId: string, rl: RateLimiter | null): Promise<void> {
  await withQmp(qmpSocket, (qmp) => qmp.execute('block_set_io_throttle', ioThrottleArgs(driveId, rl)));
}

/** QMP `balloon` takes the guest's target RAM, Firecracker's API the balloon size. */
export async function setBalloonSize(qmpSocket: string, memMib: number, amountMib: number): Promise<void> {
  await withQmp(qmpSocket, (qmp) => qmp.execute('balloon', { value: (memMib - amountMib) * MIB }));
}

export async function setBalloonPolling(qmpSocket: string, intervalS: number): Promise<void> {
  await withQmp(qmpSocket, (qmp) =>
    qmp.execute('qom-set', {
      path: `/machine/peripheral/${qemuIds.balloon}`,
      property: 'guest-stats-polling-interval',
      value: intervalS,
    }),
  );
}

export interface BalloonStatsView {
  target_mib: number;
  actual_mib: number;
  target_pages: number;
  actual_pages: number;
  [stat: string]: number;
}

const STAT_NAMES: Readonly<Record<string, string>> = {
  'stat-total-memory': 'total_memory',
  'stat-free-memory': 'free_memory',
  'stat-available-memory': 'available_memory',
  'stat-disk-caches': 'disk_caches',
  'stat-swap-in': 'swap_in',
  'stat-swap-out': 'swap_out',
  'stat-major-faults': 'major_faults',
  'stat-minor-faults': 'minor_faults',
  'stat-htlb-pgalloc': 'hugetlb_allocations',
  'stat-htlb-pgfail': 'hugetlb_failures',
};

/** Firecracker-shaped statistics: balloon size (target and actual) plus the guest's own memory figures. */
export async function balloonStats(qmpSocket: string, memMib: number, targetMib: number): Promise<BalloonStatsView> {
  return withQmp(qmpSocket, async (qmp) => {
    const { actual } = await qmp.execute<{ actual: number }>('query-balloon');
    const gs = await qmp.execute<{ stats: Record<string, number> }>('qom-get', {
      path: `/machine/peripheral/${qemuIds.balloon}`,
      property: 'guest-stats',
    });
    const actualMib = Math.max(0, memMib - Math.round(actual / MIB));
    const out: BalloonStatsView = {
      target_mib: targetMib,
      actual_mib: actualMib,
      target_pages: targetMib * 256,
      actual_pages: actualMib * 256,
    };
    for (const [k, v] of Object.entries(gs.stats ?? {})) {
      const name = STAT_NAMES[k];
      if (name && typeof v === 'number' && v < UNAVAILABLE) out[name] = v;
    }
    return out;
  });
}
