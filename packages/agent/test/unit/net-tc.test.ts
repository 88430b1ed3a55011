import { describe, expect, it } from 'vitest';
import { InvalidNetInput, UnsupportedLimit } from '../../src/net/errors.ts';
import { tbfArgs, tbfParams } from '../../src/net/tc.ts';

describe('Firecracker rate limiter → tbf parameters', () => {
  it('maps 1 MiB/s to 8388608 bit/s with the bucket as burst', () => {
    expect(tbfParams({ bandwidth: { size: 1048576, refill_time: 1000 } }, 'rx')).toEqual({
      rateBitsPerSec: 8388608,
      burstBytes: 1048576,
      latencyMs: 50,
    });
  });

  it('adds the one-time burst to the bucket and scales the refill time', () => {
    expect(tbfParams({ bandwidth: { size: 131072, refill_time: 125, one_time_burst: 65536 } }, 'tx')).toMatchObject({
      rateBitsPerSec: 8388608,
      burstBytes: 196608,
    });
  });

  it('raises a burst below one frame to a full frame at the device MTU', () => {
    expect(tbfParams({ bandwidth: { size: 100, refill_time: 1000 } }, 'rx')?.burstBytes).toBe(1518);
    expect(tbfParams({ bandwidth: { size: 100, refill_time: 1000 } }, 'rx', 9000)?.burstBytes).toBe(9018);
    expect(tbfParams({ bandwidth: { size: 1, refill_time: 100000 } }, 'rx')?.rateBitsPerSec).toBe(1);
  });

  it('treats absent, size 0 or refill_time 0 as no limit', () => {
    expect(tbfParams(undefined, 'rx')).toBeNull();
    expect(tbfParams(null, 'rx')).toBeNull();
    expect(tbfParams({}, 'rx')).toBeNull();
    expect(tbfParams({ bandwidth: { size: 0, refill_time: 1000 } }, 'rx')).toBeNull();
    expect(tbfParams({ bandwidth: { size: 1000, refill_time: 0 } }, 'tx')).toBeNull();
    expect(tbfParams({ ops: { size: 0, refill_time: 1000 } }, 'tx')).toBeNull();
  });

  it('refuses an active ops bucket instead of ignoring it', () => {
    const limiter = { bandwidth: { size: 1048576, refill_time: 1000 }, ops: { size: 100, refill_time: 1000 } };
    expect(() => tbfParams(limiter, 'tx')).toThrow(UnsupportedLimit);
    expect(() => tbfParams(limiter, 'tx')).toThrow(/tx ops rate limit is not supported/);
  });

  it('refuses negative or fractional bucket values', () => {
    expect(() => tbfParams({ bandwidth: { size: -1, refill_time: 1000 } }, 'rx')).toThrow(InvalidNetInput);
    expect(() => tbfParams({ bandwidth: { size: 1.5, refill_time: 1000 } }, 'rx')).toThrow(InvalidNetInput);
    expect(() => tbfParams({ bandwidth: { size: 1, refill_time: 1, one_time_burst: Number.NaN } }, 'rx')).toThrow(
      InvalidNetInput,
    );
  });

  it('builds the tc argv', () => {
    const p = tbfParams({ bandwidth: { size: 1048576, refill_time: 1000 } }, 'rx');
    expect(p && tbfArgs('nqt-1a2b3c4d-0', p)).toEqual([
      'qdisc',
      'replace',
      'dev',
      'nqt-1a2b3c4d-0',
      'root',
      'tbf',
      'rate',
      '8388608bit',
      'burst',
      '1048576',
      'latency',
      '50ms',
    ]);
  });
});
