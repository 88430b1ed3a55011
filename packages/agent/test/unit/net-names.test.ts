import { describe, expect, it } from 'vitest';
import { InvalidNetInput } from '../../src/net/errors.ts';
import {
  assertBridgeName,
  assertInterfaceCidr,
  assertMac,
  assertTapName,
  cidrContains,
  generateMac,
  ifbNameForTap,
  parseCidr,
  parseIpv4,
  tapNameFor,
} from '../../src/net/names.ts';

const HOSTILE = [
  'x;touch /tmp/MARK',
  '$(touch /tmp/MARK)',
  '`touch /tmp/MARK`',
  'a b',
  'nqt-aaaaaaaaaaaaaaaa',
  'brüçke',
  'nqt-ü',
  '-help',
  '',
  'nqt-a\n',
  '../etc',
];

describe('interface names', () => {
  it('accepts plain bridge and TAP names', () => {
    expect(assertBridgeName('nqbr0')).toBe('nqbr0');
    expect(assertBridgeName('fc-br.100')).toBe('fc-br.100');
    expect(assertTapName('nqt-1a2b3c4d-0')).toBe('nqt-1a2b3c4d-0');
  });

  it.each(HOSTILE)('refuses %j with a typed error', (name) => {
    expect(() => assertBridgeName(name)).toThrow(InvalidNetInput);
    expect(() => assertTapName(name)).toThrow(InvalidNetInput);
  });

  it('refuses TAP names outside the nqt namespace, so cleanup never touches foreign devices', () => {
    expect(() => assertTapName('eth0')).toThrow(InvalidNetInput);
    expect(() => assertTapName('tap0')).toThrow(InvalidNetInput);
  });

  it('derives a 15-character TAP name per VM and NIC, distinct for ids sharing a prefix', () => {
    const a = tapNameFor('01890a5d-ac96-774b-bcce-b302099a8057', 0);
    const b = tapNameFor('01890a5d-ac96-774b-bcce-b302099a8058', 0);
    expect(a).toMatch(/^nqt-[0-9a-f]{8}-0$/);
    expect(a).not.toBe(b);
    expect(tapNameFor('vm', 99).length).toBeLessThanOrEqual(15);
    expect(tapNameFor('vm', 3)).toBe(tapNameFor('vm', 3));
    expect(() => tapNameFor('vm', 100)).toThrow(InvalidNetInput);
  });

  it('names the IFB after its TAP', () => {
    expect(ifbNameForTap('nqt-1a2b3c4d-0')).toBe('nqi-1a2b3c4d-0');
  });
});

describe('MAC addresses', () => {
  it('generates locally administered unicast addresses from the random source', () => {
    const mac = generateMac(() => new Uint8Array([0xff, 1, 2, 3, 4, 5]));
    expect(mac).toBe('fe:01:02:03:04:05');
    for (let i = 0; i < 200; i++) {
      const m = generateMac();
      expect(assertMac(m)).toBe(m);
    }
  });

  it('normalises case and refuses multicast, vendor and malformed addresses', () => {
    expect(assertMac('06:AA:bb:CC:dd:01')).toBe('06:aa:bb:cc:dd:01');
    expect(() => assertMac('07:00:00:00:00:01')).toThrow(/multicast/);
    expect(() => assertMac('00:16:3e:00:00:01')).toThrow(/locally administered/);
    expect(() => assertMac('06:00:00:00:00')).toThrow(InvalidNetInput);
    expect(() => assertMac('06-00-00-00-00-01')).toThrow(InvalidNetInput);
    expect(() => assertMac('$(touch /tmp/MARK)')).toThrow(InvalidNetInput);
  });
});

describe('IPv4 CIDR helpers', () => {
  it('computes network, broadcast and host range', () => {
    expect(parseCidr('10.213.7.1/24')).toEqual({
      address: '10.213.7.1',
      prefix: 24,
      netmask: '255.255.255.0',
      network: '10.213.7.0',
      broadcast: '10.213.7.255',
      firstHost: '10.213.7.1',
      lastHost: '10.213.7.254',
      hostCount: 254,
      cidr: '10.213.7.0/24',
    });
    expect(parseCidr('0.0.0.0/0').hostCount).toBe(2 ** 32 - 2);
    expect(parseCidr('192.168.1.4/31')).toMatchObject({ firstHost: '192.168.1.4', lastHost: '192.168.1.5' });
    expect(parseCidr('192.168.1.9/32')).toMatchObject({ network: '192.168.1.9', hostCount: 1 });
  });

  it('tests membership', () => {
    expect(cidrContains('10.213.0.0/16', '10.213.255.3')).toBe(true);
    expect(cidrContains('10.213.0.0/16', '10.214.0.1')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '8.8.8.8')).toBe(true);
  });

  it('refuses malformed addresses', () => {
    for (const bad of ['10.0.0.1', '10.0.0.256/24', '10.0.0.1/33', '010.0.0.1/8', '10.0.0.1/24/1', ' 10.0.0.1/24']) {
      expect(() => parseCidr(bad)).toThrow(InvalidNetInput);
    }
    expect(() => parseIpv4('1.2.3')).toThrow(InvalidNetInput);
  });

  it('requires a host address for an interface', () => {
    expect(assertInterfaceCidr('10.213.0.1/24').address).toBe('10.213.0.1');
    expect(() => assertInterfaceCidr('10.213.0.0/24')).toThrow(/network or broadcast/);
    expect(() => assertInterfaceCidr('10.213.0.255/24')).toThrow(/network or broadcast/);
  });
});
