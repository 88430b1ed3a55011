import { describe, expect, it } from 'vitest';
import { parseRange } from './images.range.ts';

describe('parseRange', () => {
  it('serves the whole file without a Range header, with several ranges, or with another unit', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-1,5-6', 100)).toEqual({ kind: 'full' });
    expect(parseRange('items=0-1', 100)).toEqual({ kind: 'full' });
  });

  it('reads start-end, open-ended and suffix ranges, clamping the end to the file', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'partial', start: 90, end: 99 });
    expect(parseRange('bytes=-500', 100)).toEqual({ kind: 'partial', start: 0, end: 99 });
    expect(parseRange('bytes=50-5000', 100)).toEqual({ kind: 'partial', start: 50, end: 99 });
  });

  it('calls malformed and unsatisfiable ranges invalid', () => {
    for (const h of ['bytes=100-', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'bytes=a-b', 'bytes=1-2-3'])
      expect(parseRange(h, 100), h).toEqual({ kind: 'invalid' });
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'invalid' });
  });
});
