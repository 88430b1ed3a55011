import type { RateLimiter } from '@nqvm/api';

/** Bandwidth units as users type them: decimal, like link speeds and `tc` rates. */
export const RATE_UNITS = { 'KB/s': 1e3, 'MB/s': 1e6, 'GB/s': 1e9 } as const;
export type RateUnit = keyof typeof RATE_UNITS;

export const RATE_PRESETS: { label: string; value: string; unit: RateUnit }[] = [
  { label: '10 MB/s', value: '10', unit: 'MB/s' },
  { label: '100 MB/s', value: '100', unit: 'MB/s' },
  { label: '1 GB/s', value: '1', unit: 'GB/s' },
];

/** A rate as typed in a form: empty value means unlimited. */
export interface RateInput {
  value: string;
  unit: RateUnit;
}

export const UNLIMITED: RateInput = { value: '', unit: 'MB/s' };

/** Bytes per second a limiter allows, or null when it does not limit bandwidth. */
export function bytesPerSecond(rl: RateLimiter | null | undefined): number | null {
  const b = rl?.bandwidth;
  if (!b || b.size <= 0 || b.refill_time <= 0) return null;
  return (b.size * 1000) / b.refill_time;
}

export function formatRate(rl: RateLimiter | null | undefined): string {
  const bps = bytesPerSecond(rl);
  if (bps === null) return 'unlimited';
  const { value, unit } = rateToInput(bps);
  return `${value} ${unit}`;
}

/** The largest unit that keeps the number at least 1, trimmed to 3 decimals. */
export function rateToInput(bps: number): RateInput {
  const unit: RateUnit = bps >= 1e9 ? 'GB/s' : bps >= 1e6 ? 'MB/s' : 'KB/s';
  return { value: String(Number((bps / RATE_UNITS[unit]).toFixed(3))), unit };
}

export function limiterToInput(rl: RateLimiter | null | undefined): RateInput {
  const bps = bytesPerSecond(rl);
  return bps === null ? UNLIMITED : rateToInput(bps);
}

/** Why a typed rate is not acceptable, or undefined when it is (empty is unlimited). */
export function rateError(r: RateInput): string | undefined {
  if (r.value.trim() === '') return undefined;
  const n = Number(r.value);
  if (!Number.isFinite(n) || n <= 0) return 'a positive number, or empty for unlimited';
  const bytes = n * RATE_UNITS[r.unit];
  if (bytes < 1000) return 'at least 1 KB/s';
  if (bytes > 2 ** 40) return 'at most 1 TB/s';
  return undefined;
}

/** A one-second token bucket of the typed rate; null for unlimited. */
export function inputToLimiter(r: RateInput): RateLimiter | null {
  if (r.value.trim() === '' || rateError(r)) return null;
  return { bandwidth: { size: Math.round(Number(r.value) * RATE_UNITS[r.unit]), refill_time: 1000 } };
}
