import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../src/host/exec.ts';
import { runChecked, systemRunner } from '../../src/host/exec.ts';
import { InvalidNetInput, NetConflict, UnsupportedLimit } from '../../src/net/errors.ts';
import { HostNetwork } from '../../src/net/host-network.ts';
import { generateMac, tapNameFor } from '../../src/net/names.ts';

const ns = `nqvm-net-${randomBytes(4).toString('hex')}`;
const net = new HostNetwork({ runner: systemRunner, netns: ns });
const BR = 'nqbr-test';
const tap0 = tapNameFor(ns, 0);
const tap1 = tapNameFor(ns, 1);
const MiB = 1048576;

const inNs = (cmd: string, args: string[]) => runChecked(systemRunner, 'ip', ['netns', 'exec', ns, cmd, ...args]);
const json = async <T>(cmd: 'ip' | 'tc', args: string[]): Promise<T> =>
  JSON.parse((await runChecked(systemRunner, cmd, ['-n', ns, '-j', ...args])).trim() || '[]') as T;

interface Link {
  ifname: string;
  flags: string[];
  master?: string;
  mtu: number;
}
interface Qdisc {
  kind: string;
  root?: boolean;
  options?: { rate?: number; burst?: number };
}

beforeAll(async () => {
  await runChecked(systemRunner, 'ip', ['netns', 'add', ns]);
});

afterAll(async () => {
  await systemRunner.run('ip', ['netns', 'del', ns]);
});

describe('HostNetwork inside a private network namespace', () => {
  it('creates the bridge with its address and brings it up, idempotently', async () => {
    expect(await net.bridgeExists(BR)).toBe(false);
    const first = await net.ensureBridge({ name: BR, address: '10.213.40.1/24' });
    const again = await net.ensureBridge({ name: BR, address: '10.213.40.1/24' });
    expect(first).toEqual({ name: BR, up: true, mtu: 1500, addresses: ['10.213.40.1/24'] });
    expect(again).toEqual(first);
    const addrs = await json<{ addr_info: { local: string; prefixlen: number }[] }[]>('ip', [
      '-4',
      'addr',
      'show',
      'dev',
      BR,
    ]);
    expect(addrs[0]?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toEqual(['10.213.40.1/24']);
    expect(await net.bridgeExists(BR)).toBe(true);
  });

  it('creates two TAPs attached to the bridge and up, and lists them', async () => {
    await net.createTap({ name: tap0, bridge: BR });
    await net.createTap({ name: tap1, bridge: BR, mtu: 1400 });
    const again = await net.createTap({ name: tap1, bridge: BR, mtu: 1400 });
    expect(again).toMatchObject({ name: tap1, bridge: BR, up: true, mtu: 1400 });

    const ports = await json<Link[]>('ip', ['link', 'show', 'master', BR]);
    expect(ports.map((l) => l.ifname).sort()).toEqual([tap0, tap1].sort());
    for (const p of ports) expect(p.flags).toContain('UP');

    const listed = await net.listTaps('nqt-');
    expect(listed.map((t) => [t.name, t.bridge, t.up])).toEqual([tap0, tap1].sort().map((n) => [n, BR, true]));
    expect(await net.listTaps(tap0.slice(0, 13))).toHaveLength(2);
    expect(await net.listTaps('nqtx')).toEqual([]);
  });

  it('reads TAP counters that match the kernel statistics', async () => {
    const c = await net.tapCounters(tap0);
    const sys = async (f: string) => Number((await inNs('cat', [`/sys/class/net/${tap0}/statistics/${f}`])).trim());
    expect(c).toEqual({
      rxBytes: await sys('rx_bytes'),
      rxPackets: await sys('rx_packets'),
      rxDropped: await sys('rx_dropped'),
      txBytes: await sys('tx_bytes'),
      txPackets: await sys('tx_packets'),
      txDropped: await sys('tx_dropped'),
    });
  });

  it('applies NIC limits that tc reports with the expected rates, replacing them in place', async () => {
    await net.applyNicLimits(tap0, {
      rx: { bandwidth: { size: MiB, refill_time: 1000 } },
      tx: { bandwidth: { size: MiB, refill_time: 500, one_time_burst: MiB } },
    });
    await net.applyNicLimits(tap0, {
      rx: { bandwidth: { size: MiB, refill_time: 1000 } },
      tx: { bandwidth: { size: MiB, refill_time: 500, one_time_burst: MiB } },
    });
    const root = (await json<Qdisc[]>('tc', ['qdisc', 'show', 'dev', tap0])).filter((q) => q.root);
    expect(root).toEqual([
      expect.objectContaining({ kind: 'tbf', options: expect.objectContaining({ rate: MiB, burst: MiB }) }),
    ]);
    const ifb = tap0.replace(/^nqt/, 'nqi');
    const ifbRoot = (await json<Qdisc[]>('tc', ['qdisc', 'show', 'dev', ifb])).filter((q) => q.root);
    expect(ifbRoot[0]).toMatchObject({ kind: 'tbf', options: { rate: 2 * MiB, burst: 2 * MiB } });
    const filters = await json<{ options?: { actions?: { kind: string; to_dev: string }[] } }[]>('tc', [
      'filter',
      'show',
      'dev',
      tap0,
      'ingress',
    ]);
    const redirects = filters.flatMap((f) => f.options?.actions ?? []);
    expect(redirects).toEqual([expect.objectContaining({ kind: 'mirred', to_dev: ifb })]);
    expect(await net.readNicLimits(tap0)).toEqual({
      rx: { rateBytesPerSec: MiB, burstBytes: MiB },
      tx: { rateBytesPerSec: 2 * MiB, burstBytes: 2 * MiB },
    });

    await net.applyNicLimits(tap0, {
      rx: { bandwidth: { size: 0, refill_time: 1000 } },
      tx: { bandwidth: { size: 4 * MiB, refill_time: 1000 } },
    });
    expect(await net.readNicLimits(tap0)).toEqual({ rx: null, tx: { rateBytesPerSec: 4 * MiB, burstBytes: 4 * MiB } });
    expect((await json<Qdisc[]>('tc', ['qdisc', 'show', 'dev', tap0])).some((q) => q.kind === 'tbf')).toBe(false);
  });

  it('refuses a packet-rate limit and leaves the current limits as they were', async () => {
    const before = await net.readNicLimits(tap0);
    await expect(
      net.applyNicLimits(tap0, {
        rx: { bandwidth: { size: MiB, refill_time: 1000 }, ops: { size: 10, refill_time: 1 } },
      }),
    ).rejects.toBeInstanceOf(UnsupportedLimit);
    expect(await net.readNicLimits(tap0)).toEqual(before);
  });

  it('clears NIC limits, removing the ingress hook and the IFB', async () => {
    await net.clearNicLimits(tap0);
    await net.clearNicLimits(tap0);
    expect(await net.readNicLimits(tap0)).toEqual({ rx: null, tx: null });
    const kinds = (await json<Qdisc[]>('tc', ['qdisc', 'show', 'dev', tap0])).map((q) => q.kind);
    expect(kinds).not.toContain('ingress');
    expect(
      (await json<Link[]>('ip', ['link', 'show'])).map((l) => l.ifname).filter((n) => n.startsWith('nqi')),
    ).toEqual([]);
  });

  it('adds one masquerade rule per bridge and turns on forwarding in the namespace only', async () => {
    const rootForward = (await runChecked(systemRunner, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim();
    await net.enableNat({ bridge: BR, cidr: '10.213.40.1/24', uplink: 'eth0' });
    await net.enableNat({ bridge: BR, cidr: '10.213.40.0/24', uplink: 'eth0' });
    expect((await net.natRules()).map(({ bridge, cidr, uplink }) => ({ bridge, cidr, uplink }))).toEqual([
      { bridge: BR, cidr: '10.213.40.0/24', uplink: 'eth0' },
    ]);
    const ruleset = await inNs('nft', ['list', 'chain', 'ip', 'nqvm', 'postrouting']);
    expect(ruleset).toMatch(/ip saddr 10\.213\.40\.0\/24 oifname "eth0" masquerade comment "nqvm-nat:nqbr-test"/);
    expect((await inNs('sysctl', ['-n', 'net.ipv4.ip_forward'])).trim()).toBe('1');
    expect((await runChecked(systemRunner, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).trim()).toBe(rootForward);

    await net.enableNat({ bridge: BR, cidr: '10.213.40.0/24', uplink: 'eth1' });
    expect((await net.natRules()).map((r) => r.uplink)).toEqual(['eth1']);
    await net.disableNat(BR);
    expect(await net.natRules()).toEqual([]);
  });

  it('deletes TAPs and bridge, leaving only loopback, and tolerates deleting twice', async () => {
    await net.applyNicLimits(tap1, { tx: { bandwidth: { size: MiB, refill_time: 1000 } } });
    await net.deleteTap(tap0);
    await net.deleteTap(tap1);
    await net.deleteTap(tap1);
    expect(await net.listTaps()).toEqual([]);
    await net.deleteBridge(BR);
    await net.deleteBridge(BR);
    expect(await net.bridgeExists(BR)).toBe(false);
    expect((await json<Link[]>('ip', ['link', 'show'])).map((l) => l.ifname)).toEqual(['lo']);
  });

  it('plugs a VM TAP in one ip run once the bridge is known, and converges when the bridge vanished behind it', async () => {
    const runs: string[][] = [];
    const counting: CommandRunner = {
      run: (cmd, args, opts) => {
        runs.push([cmd, ...args]);
        return systemRunner.run(cmd, args, opts);
      },
    };
    const plug = new HostNetwork({ runner: counting, netns: ns });
    const bridge = { name: BR, address: '10.213.40.1/24' };
    await plug.plugTap({ name: tap0, bridge: BR }, bridge);
    runs.length = 0;
    await plug.plugTap({ name: tap1, bridge: BR }, bridge);
    expect(runs).toHaveLength(1);
    const ports = async () =>
      (await json<Link[]>('ip', ['link', 'show', 'master', BR])).map((l) => [l.ifname, l.flags.includes('UP')]);
    expect((await ports()).sort()).toEqual([tap0, tap1].sort().map((n) => [n, true]));

    // Someone removes the bridge by hand: the next TAP brings it back, with its address, and joins it.
    await runChecked(systemRunner, 'ip', ['-n', ns, 'link', 'del', 'dev', BR]);
    await plug.deleteTap(tap1);
    await plug.plugTap({ name: tap1, bridge: BR }, bridge);
    expect(await ports()).toEqual([[tap1, true]]);
    expect(await net.ensureBridge(bridge)).toMatchObject({ up: true, addresses: ['10.213.40.1/24'] });

    // A name already taken by something that is not a TAP is a conflict, not a silent success.
    const taken = tapNameFor(ns, 2);
    await runChecked(systemRunner, 'ip', ['-n', ns, 'link', 'add', 'name', taken, 'type', 'bridge']);
    await expect(plug.plugTap({ name: taken, bridge: BR }, bridge)).rejects.toBeInstanceOf(NetConflict);
    await runChecked(systemRunner, 'ip', ['-n', ns, 'link', 'del', 'dev', taken]);
    for (const t of [tap0, tap1]) await plug.deleteTap(t);
    await plug.deleteBridge(BR);
  });

  it('refuses injected names with a typed error and never runs them', async () => {
    const mark = `/tmp/nqvm-mark-${randomBytes(4).toString('hex')}`;
    const payloads = [`x;touch ${mark}`, `$(touch ${mark})`, `\`touch ${mark}\``, `a b`, `nqt-|touch ${mark}`];
    for (const bad of payloads) {
      await expect(net.ensureBridge({ name: bad, address: '10.213.40.1/24' })).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(net.createTap({ name: bad, bridge: BR })).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(net.createTap({ name: tap0, bridge: bad })).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(
        net.plugTap({ name: bad, bridge: BR }, { name: BR, address: '10.213.40.1/24' }),
      ).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(net.enableNat({ bridge: BR, cidr: '10.0.0.0/8', uplink: bad })).rejects.toBeInstanceOf(
        InvalidNetInput,
      );
      await expect(net.applyNicLimits(bad, {})).rejects.toBeInstanceOf(InvalidNetInput);
      expect(() => new HostNetwork({ runner: systemRunner, netns: bad })).toThrow(InvalidNetInput);
    }
    expect(existsSync(mark)).toBe(false);
    expect(generateMac()).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  });
});
