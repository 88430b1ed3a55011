import { describe, expect, it } from 'vitest';
import { firstFreeIp, intToIp, ipToInt, netmask, parseCidr, randomMac } from './ipam.ts';

describe('IPAM', () => {
  it('parses CIDRs and masks', () => {
    expect(parseCidr('10.88.0.0/24')).toEqual({ network: ipToInt('10.88.0.0'), prefix: 24 });
    expect(intToIp(parseCidr('10.88.3.77/22').network)).toBe('10.88.0.0');
    expect(netmask(24)).toBe('255.255.255.0');
    expect(() => parseCidr('10.88.0.0/33')).toThrow();
  });

  it('gives the lowest free host address, skipping the gateway, used ones and broadcast', () => {
    const c = parseCidr('10.88.0.0/29');
    expect(firstFreeIp(c, '10.88.0.1', new Set())).toBe('10.88.0.2');
    expect(firstFreeIp(c, '10.88.0.2', new Set(['10.88.0.3']))).toBe('10.88.0.4');
    expect(
      firstFreeIp(c, '10.88.0.1', new Set(['10.88.0.2', '10.88.0.3', '10.88.0.4', '10.88.0.5', '10.88.0.6'])),
    ).toBeNull();
  });

  it('makes locally administered unicast MACs', () => {
    for (let i = 0; i < 50; i++) expect(randomMac()).toMatch(/^02(:[0-9a-f]{2}){5}$/);
  });
});
