import { describe, expect, it } from 'vitest';
import { checkSource } from './images.source.ts';

describe('checkSource', () => {
  it('accepts each source type with its own fields', () => {
    expect(checkSource({ type: 'path', path: 'a' })).toEqual({ type: 'path', path: 'a' });
    expect(checkSource({ type: 'url', url: 'http://x/y', sha256: 'a'.repeat(64) }).type).toBe('url');
    expect(checkSource({ type: 'blank', size_mib: 8 })).toEqual({ type: 'blank', size_mib: 8 });
  });

  it('names the missing or foreign field', () => {
    expect(() => checkSource({ type: 'blank' })).toThrow(expect.objectContaining({ field: 'body.source.size_mib' }));
    expect(() => checkSource({ type: 'path', path: 'a', url: 'http://x' })).toThrow(
      expect.objectContaining({ field: 'body.source.url' }),
    );
    expect(() => checkSource({ type: 'url', path: 'a' })).toThrow(
      expect.objectContaining({ field: 'body.source.url' }),
    );
  });
});
