import { describe, expect, it } from 'vitest';
import { withNicArgs } from './devices.service.ts';

describe('addresses of extra NICs on the kernel command line', () => {
  it('adds one nqvm.nic=<mac>,<cidr> per NIC after the first, keeping the user’s arguments', () => {
    const nics = [
      { mac: '02:00:00:00:00:01', ip: '10.0.0.2/24' },
      { mac: '02:AA:00:00:00:02', ip: '10.0.0.3/24' },
      { mac: '02:aa:00:00:00:03', ip: '10.1.0.3/16' },
    ];
    expect(withNicArgs('quiet', nics)).toBe(
      'quiet nqvm.nic=02:aa:00:00:00:02,10.0.0.3/24 nqvm.nic=02:aa:00:00:00:03,10.1.0.3/16',
    );
    expect(withNicArgs('', nics.slice(0, 2))).toBe('nqvm.nic=02:aa:00:00:00:02,10.0.0.3/24');
  });

  it('leaves a single-NIC VM’s arguments as they were', () => {
    expect(withNicArgs('nqvm.tick=1', [{ mac: '02:00:00:00:00:01', ip: '10.0.0.2/24' }])).toBe('nqvm.tick=1');
    expect(withNicArgs('', [])).toBe('');
  });
});
