import { describe, expect, it } from 'vitest';
import { randomMac } from './ipam.ts';

describe('IPAM', () => {
  it('makes locally administered unicast MACs', () => {
    for (let i = 0; i < 50; i++) expect(randomMac()).toMatch(/^02(:[0-9a-f]{2}){5}$/);
  });
});
