import { describe, expect, it } from 'vitest';
import { flattenSpec, specDifferences } from './snapshot-compare.tsx';

describe('snapshot compare', () => {
  it('flattens a spec to leaf paths', () => {
    const f = flattenSpec({ vcpu: 2, nics: [{ mac: 'aa' }], tags: [], meta: {} });
    expect([...f]).toEqual([
      ['vcpu', '2'],
      ['nics[0].mac', '"aa"'],
      ['tags', '[]'],
      ['meta', '{}'],
    ]);
  });

  it('lists only the keys that differ, absent ones as a dash', () => {
    const a = { vcpu: 1, mem_mib: 256, drives: [{ id: 'root' }] };
    const b = { vcpu: 2, mem_mib: 256, drives: [{ id: 'root' }, { id: 'data' }] };
    expect(specDifferences(a, b)).toEqual([
      { key: 'drives[1].id', a: '—', b: '"data"' },
      { key: 'vcpu', a: '1', b: '2' },
    ]);
  });
});
