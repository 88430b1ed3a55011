import { describe, expect, it } from 'vitest';
import { imdsText, lookup, mergePatch } from './imds.ts';

const data = { latest: { 'meta-data': { zone: 'z1', 'instance-id': 'i-1', tags: { a: 'b' }, n: 3, list: ['x'] } } };

describe('MMDS paths and the IMDS text form', () => {
  it('walks the tree by path segments; absent or through a leaf is undefined', () => {
    expect(lookup(data, '/latest/meta-data/instance-id')).toBe('i-1');
    expect(lookup(data, '/')).toBe(data);
    expect(lookup(data, '/latest/meta-data/instance-id/more')).toBeUndefined();
    expect(lookup(data, '/latest/nope')).toBeUndefined();
    expect(lookup(data, '/latest/meta-data/list/0')).toBeUndefined();
    expect(lookup({ 'a b': 'c' }, '/a%20b')).toBe('c');
    expect(lookup(data, '/__proto__')).toBeUndefined();
  });

  it('lists keys sorted, sub-objects with a slash; strings are themselves; other leaves have no form', () => {
    expect(imdsText(lookup(data, '/latest/meta-data'))).toBe('instance-id\nlist\nn\ntags/\nzone');
    expect(imdsText('i-1')).toBe('i-1');
    expect(imdsText(3)).toBeNull();
    expect(imdsText(['x'])).toBeNull();
  });

  it('merges an RFC 7396 patch: null removes, objects merge, the rest replaces', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: 1 }, { a: { b: null, e: 3 }, d: [1] })).toEqual({
      a: { c: 2, e: 3 },
      d: [1],
    });
  });
});
