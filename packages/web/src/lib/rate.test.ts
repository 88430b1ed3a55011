import { describe, expect, it } from 'vitest';
import { formatRate, inputToLimiter, limiterToInput, rateError } from './rate.ts';

describe('rate limits', () => {
  it('turns a typed rate into a one-second token bucket and back, per unit', () => {
    expect(inputToLimiter({ value: '10', unit: 'MB/s' })).toEqual({
      bandwidth: { size: 10_000_000, refill_time: 1000 },
    });
    expect(inputToLimiter({ value: '1', unit: 'GB/s' })?.bandwidth?.size).toBe(1e9);
    expect(inputToLimiter({ value: '512', unit: 'KB/s' })?.bandwidth?.size).toBe(512_000);
    expect(limiterToInput({ bandwidth: { size: 100_000_000, refill_time: 1000 } })).toEqual({
      value: '100',
      unit: 'MB/s',
    });
  });

  it('treats empty as unlimited and shows buckets of any refill time per second', () => {
    expect(inputToLimiter({ value: '', unit: 'MB/s' })).toBeNull();
    expect(formatRate(null)).toBe('unlimited');
    expect(formatRate({ bandwidth: { size: 5_000_000, refill_time: 500 } })).toBe('10 MB/s');
    expect(formatRate({ bandwidth: { size: 0, refill_time: 1000 } })).toBe('unlimited');
  });

  it('refuses what the API would refuse', () => {
    expect(rateError({ value: 'fast', unit: 'MB/s' })).toMatch(/positive/);
    expect(rateError({ value: '-1', unit: 'MB/s' })).toMatch(/positive/);
    expect(rateError({ value: '0.5', unit: 'KB/s' })).toMatch(/at least/);
    expect(rateError({ value: '5000', unit: 'GB/s' })).toMatch(/at most/);
    expect(rateError({ value: '1.5', unit: 'GB/s' })).toBeUndefined();
  });
});
