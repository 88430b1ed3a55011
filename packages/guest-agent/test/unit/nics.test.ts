import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyExtraNics, type NicHost, parseNicArgs } from '../../src/nics';

describe('extra NICs from the kernel command line', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function host(links: Record<string, string>, addresses: Record<string, string[]> = {}) {
    const sysNet = mkdtempSync(join(tmpdir(), 'sysnet-'));
    dirs.push(sysNet);
    for (const [dev, mac] of Object.entries(links)) {
      mkdirSync(join(sysNet, dev));
      writeFileSync(join(sysNet, dev, 'address'), `${mac}\n`);
    }
    const calls: string[] = [];
    const h: NicHost = {
      sysNet,
      exec: async (cmd, args) => void calls.push([cmd, ...args].join(' ')),
      addresses: () => addresses,
      sysctl: async (k, v) => void calls.push(`sysctl ${k}=${v}`),
    };
    return { h, calls };
  }

  it('parses nqvm.nic=<mac>,<addr>/<prefix> and ignores anything malformed or hostile', () => {
    expect(
      parseNicArgs(
        'console=ttyS0 nqvm.nic=02:AA:00:00:00:02,10.0.0.9/24 nqvm.nic=02:aa:00:00:00:03,10.0.0.300/24 ' +
          'nqvm.nic=02:aa:00:00:00:04,$(touch/tmp/x)/24 nqvm.nic=02:aa:00:00:00:05,10.1.0.5/16;rm',
      ),
    ).toEqual([{ mac: '02:aa:00:00:00:02', address: '10.0.0.9', prefix: 24 }]);
  });

  it('addresses the NIC with that MAC and routes its replies out of it', async () => {
    const { h, calls } = host({ eth0: '02:aa:00:00:00:01', eth1: '02:aa:00:00:00:02' });
    const done = await applyExtraNics([{ mac: '02:aa:00:00:00:02', address: '10.0.0.9', prefix: 24 }], h);
    expect(done).toEqual(['eth1 10.0.0.9/24']);
    expect(calls).toEqual([
      'sysctl net.ipv4.conf.all.arp_ignore=1',
      'sysctl net.ipv4.conf.all.arp_announce=2',
      'ip link set dev eth1 up',
      'ip addr add 10.0.0.9/24 dev eth1',
      'ip route replace 10.0.0.0/24 dev eth1 table 101',
      'ip rule add from 10.0.0.9 table 101',
    ]);
  });

  it('changes nothing where the address is already there, and says which MAC is missing', async () => {
    const { h, calls } = host({ eth1: '02:aa:00:00:00:02' }, { eth1: ['10.0.0.9'] });
    expect(await applyExtraNics([{ mac: '02:aa:00:00:00:02', address: '10.0.0.9', prefix: 24 }], h)).toEqual([]);
    expect(calls).toEqual([]);
    await expect(applyExtraNics([{ mac: '02:aa:00:00:00:07', address: '10.0.0.7', prefix: 24 }], h)).rejects.toThrow(
      /no network interface has MAC 02:aa:00:00:00:07/,
    );
  });
});
