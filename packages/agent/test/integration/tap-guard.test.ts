import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CommandRunner, runChecked, systemRunner } from '../../src/host/exec.ts';
import { InvalidNetInput } from '../../src/net/errors.ts';
import { linkLocalOf, TapGuard } from '../../src/net/tap-guard.ts';

// Vitest shares one network namespace between files (the agent tests use the default table): this file owns its own.
const TABLE = `nqvm_guard_t${randomBytes(4).toString('hex')}`;
const MARK = `/tmp/nqvm-guard-mark-${randomBytes(4).toString('hex')}`;

const runs: string[][] = [];
const counting: CommandRunner = {
  run(cmd, args, opts) {
    runs.push([cmd, ...args]);
    return systemRunner.run(cmd, args, opts);
  },
};
const listRuns = () => runs.filter((r) => r.includes('list')).length;
const nic = (i: number | string, ip = `10.77.0.${10 + Number(i)}`) => ({
  ip,
  mac: `52:54:00:77:00:${String(i).padStart(2, '0')}`,
  bridge: 'nqbr-tgx',
});

interface Listing {
  nftables: {
    set?: { name: string; type: unknown; elem?: unknown[] };
    chain?: { name: string; type?: string; hook?: string; prio?: number };
    rule?: { comment?: string };
  }[];
}

async function table(family: 'bridge' | 'inet' = 'bridge') {
  const items = (JSON.parse(await runChecked(systemRunner, 'nft', ['-j', 'list', 'table', family, TABLE])) as Listing)
    .nftables;
  const elems = (name: string) => items.find((i) => i.set?.name === name)?.set?.elem ?? [];
  const pairs = (name: string) =>
    elems(name)
      .map((e) => (e as { concat: string[] }).concat.join(' '))
      .sort();
  const text = await runChecked(systemRunner, 'nft', ['list', 'table', family, TABLE]);
  return {
    sets: items.flatMap((i) => (i.set ? [i.set.name] : [])),
    chains: items.flatMap((i) => (i.chain ? [i.chain] : [])),
    rules: text.split('\n').flatMap((l) => (/ (drop|accept|reject)( |$)/.test(l) ? [l.trim()] : [])),
    oldRules: items.filter((i) => i.rule?.comment?.startsWith('nqvm-guard:')).length,
    guarded: elems('guarded').map(String).sort(),
    allowed: pairs('allowed'),
    macs: pairs('macs'),
    allowed6: pairs('allowed6'),
    services: pairs('services'),
  };
}

const BRIDGE_RULES = [
  'iifname @guarded iifname . ip saddr != @allowed drop',
  'iifname @guarded iifname . arp saddr ip != @allowed drop',
  'iifname @pinned iifname . ether saddr != @macs drop',
  'iifname @pinned iifname . arp saddr ether != @macs drop',
  'iifname @pinned iifname . ip6 saddr != @allowed6 drop',
  'iifname @pinned icmpv6 type { nd-router-advert, nd-redirect } drop',
];

beforeEach(() => {
  runs.length = 0;
});

afterAll(async () => {
  await systemRunner.run('nft', ['delete', 'table', 'bridge', TABLE]);
  await systemRunner.run('nft', ['delete', 'table', 'inet', TABLE]);
  rmSync(MARK, { force: true });
});

describe('TapGuard on real nftables (own tables, private netns)', () => {
  const guard = new TapGuard(counting, { table: TABLE });

  it('sets both tables up once even when five boots guard at the same time', async () => {
    await Promise.all([0, 1, 2, 3, 4].map((i) => guard.guard(`nqt-ga${i}`, nic(i))));
    // Each table listed once; the first write of the tables, one more for the new bridge, then one run per TAP.
    expect(listRuns()).toBe(2);
    expect(runs).toHaveLength(8);
    const t = await table();
    expect(t.sets).toEqual(['guarded', 'allowed', 'pinned', 'macs', 'allowed6', 'nd_targets', 'nd_lladdr', 'services']);
    expect(t.chains).toMatchObject([
      { name: 'prerouting', type: 'filter', hook: 'prerouting', prio: -200 },
      { name: 'input', type: 'filter', hook: 'input', prio: -200 },
    ]);
    expect(t.rules.slice(0, 6)).toEqual(BRIDGE_RULES);
    expect(t.rules).toHaveLength(13);
    expect(t.rules.filter((r) => r.includes('ip daddr . tcp dport != @services drop'))).toHaveLength(1);
    expect(t.guarded).toEqual(['nqt-ga0', 'nqt-ga1', 'nqt-ga2', 'nqt-ga3', 'nqt-ga4']);
    expect(t.allowed).toEqual([0, 1, 2, 3, 4].map((i) => `nqt-ga${i} 10.77.0.${10 + i}`));
    expect(t.macs).toEqual([0, 1, 2, 3, 4].map((i) => `nqt-ga${i} 52:54:00:77:00:0${i}`));
    expect(t.allowed6.filter((a) => a.startsWith('nqt-ga0 '))).toEqual(['nqt-ga0 ::', 'nqt-ga0 fe80::5054:ff:fe77:0']);
    const inet = await table('inet');
    expect(inet.chains.map((c) => c.name)).toEqual(['input', 'forward']);
    expect(inet.rules).toContain('iifname . oifname @crossing drop');
    expect(inet.rules).toContain('iifname @isolated drop');
  });

  it('guards another TAP with exactly one nft run, accepting a CIDR', async () => {
    await guard.guard('nqt-ga5', nic(5, '10.77.0.15/24'));
    expect(runs).toHaveLength(1);
    const t = await table();
    expect(t.guarded).toContain('nqt-ga5');
    expect(t.allowed).toContain('nqt-ga5 10.77.0.15');
    expect(t.macs).toContain('nqt-ga5 52:54:00:77:00:05');
  });

  it('re-guarding a TAP with a new address leaves only the new pair, in one run', async () => {
    await guard.guard('nqt-ga0', nic(0, '10.77.0.99'));
    expect(runs).toHaveLength(1);
    const t = await table();
    expect(t.allowed.filter((a) => a.startsWith('nqt-ga0 '))).toEqual(['nqt-ga0 10.77.0.99']);
    expect(t.guarded.filter((g) => g === 'nqt-ga0')).toHaveLength(1);
  });

  it('concurrent re-guards of one TAP end with the last address only', async () => {
    await Promise.all([guard.guard('nqt-ga4', nic(4, '10.77.0.41')), guard.guard('nqt-ga4', nic(4, '10.77.0.42'))]);
    const t = await table();
    expect(t.allowed.filter((a) => a.startsWith('nqt-ga4 '))).toEqual(['nqt-ga4 10.77.0.42']);
  });

  it('unguard removes the TAP from every set in one run; an unknown TAP costs none', async () => {
    await guard.unguard('nqt-ga1');
    expect(runs).toHaveLength(1);
    const t = await table();
    expect(t.guarded).not.toContain('nqt-ga1');
    expect([...t.allowed, ...t.macs, ...t.allowed6].some((a) => a.startsWith('nqt-ga1 '))).toBe(false);
    runs.length = 0;
    await guard.unguard('nqt-never');
    expect(runs).toHaveLength(0);
  });

  it('a service meant for guests is one run and joins the input policy', async () => {
    await guard.allowService('10.77.0.1', 19091);
    await guard.allowService('10.77.0.1', 19091);
    expect(runs).toHaveLength(1);
    expect((await table()).services).toEqual(['10.77.0.1 19091']);
  });

  it('re-applies what went missing: a flushed set, a deleted rule, a deleted table', async () => {
    const before = await table();
    expect(await guard.verify()).toBe(false);
    expect(runs).toHaveLength(2);
    await runChecked(systemRunner, 'nft', ['flush', 'set', 'bridge', TABLE, 'allowed']);
    expect(await guard.verify()).toBe(true);
    expect(await table()).toEqual(before);
    await runChecked(systemRunner, 'nft', ['flush', 'chain', 'bridge', TABLE, 'prerouting']);
    expect(await guard.verify()).toBe(true);
    expect(await table()).toEqual(before);
    await runChecked(systemRunner, 'nft', ['delete', 'table', 'inet', TABLE]);
    expect(await guard.verify()).toBe(true);
    expect((await table('inet')).chains.map((c) => c.name)).toEqual(['input', 'forward']);
    // A guard whose table vanished between checks repairs it on its next change.
    await runChecked(systemRunner, 'nft', ['delete', 'table', 'bridge', TABLE]);
    runs.length = 0;
    await guard.unguard('nqt-ga2');
    const t = await table();
    expect(t.guarded).toEqual(['nqt-ga0', 'nqt-ga3', 'nqt-ga4', 'nqt-ga5']);
    expect(t.macs).toHaveLength(4);
  });

  it('a restarted agent adopts existing elements (MACs too) and converts old per-TAP rules', async () => {
    const expr = (proto: 'ip' | 'arp', field: string, addr: string) => [
      { match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'nqt-old1' } },
      { match: { op: '==', left: { payload: { protocol: 'ether', field: 'type' } }, right: proto } },
      { match: { op: '!=', left: { payload: { protocol: proto, field } }, right: addr } },
      { drop: null },
    ];
    const old = (proto: 'ip' | 'arp', field: string) => ({
      add: {
        rule: {
          family: 'bridge',
          table: TABLE,
          chain: 'prerouting',
          comment: 'nqvm-guard:nqt-old1',
          expr: expr(proto, field, '10.77.0.50'),
        },
      },
    });
    const batch = { nftables: [old('ip', 'saddr'), old('arp', 'saddr ip')] };
    await runChecked(systemRunner, 'nft', ['-j', JSON.stringify(batch)]);
    expect((await table()).oldRules).toBe(2);

    runs.length = 0;
    const restarted = new TapGuard(counting, { table: TABLE });
    await restarted.unguard('nqt-ga3');
    // Two lists, one write of both tables (old rules out, their TAP in), then the unguard.
    expect(runs).toHaveLength(4);
    const t = await table();
    expect(t.oldRules).toBe(0);
    expect(t.rules.slice(0, 6)).toEqual(BRIDGE_RULES);
    expect(t.guarded).toEqual(['nqt-ga0', 'nqt-ga4', 'nqt-ga5', 'nqt-old1']);
    expect(t.allowed).toContain('nqt-old1 10.77.0.50');
    expect(t.macs).toEqual(['nqt-ga0 52:54:00:77:00:00', 'nqt-ga4 52:54:00:77:00:04', 'nqt-ga5 52:54:00:77:00:05']);
    expect(t.services).toEqual(['10.77.0.1 19091']);

    runs.length = 0;
    await restarted.guard('nqt-old1', nic('50', '10.77.0.50'));
    expect(runs).toHaveLength(1);
    expect((await table()).macs).toContain('nqt-old1 52:54:00:77:00:50');
  });

  it('refuses injected TAP names, addresses, MACs and table names before anything runs', async () => {
    const payloads = [
      `nqt-$(touch ${MARK})`,
      `nqt;touch ${MARK}`,
      `nqt\`touch ${MARK}\``,
      'nqt-a;rm -rf /',
      '@guarded',
      'nqt-a\n',
      'eth0',
    ];
    for (const p of payloads) {
      await expect(guard.guard(p, nic(1))).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(guard.unguard(p)).rejects.toBeInstanceOf(InvalidNetInput);
    }
    for (const ip of [`10.77.0.1;touch ${MARK}`, `$(touch ${MARK})`, '10.77.0.256', '@allowed']) {
      await expect(guard.guard('nqt-ga9', nic(9, ip))).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(guard.allowService(ip, 80)).rejects.toBeInstanceOf(InvalidNetInput);
    }
    for (const bridge of [`br;touch ${MARK}`, `$(touch ${MARK})`, 'br0 }; flush'])
      await expect(guard.guard('nqt-ga9', { ...nic(9), bridge })).rejects.toBeInstanceOf(InvalidNetInput);
    for (const mac of [`52:54:00:00:00:01 }; flush ruleset; #`, '52:54:00:00:00', `$(touch ${MARK})`])
      await expect(guard.guard('nqt-ga9', { ...nic(9), mac })).rejects.toBeInstanceOf(InvalidNetInput);
    expect(() => new TapGuard(counting, { table: `t;touch ${MARK}` })).toThrow(/must match/);
    expect(runs).toHaveLength(0);
    expect(existsSync(MARK)).toBe(false);
  });
});

describe('TapGuard drops spoofed frames and guards the host on a real bridge (own host and guest namespaces)', () => {
  const id = randomBytes(3).toString('hex');
  const hostNs = `nqvm-tgh-${id}`;
  const guestNs = `nqvm-tgg-${id}`;
  const tap = `nqt-tg${id}`;
  const MAC = '52:54:00:77:09:02';
  const inHost: CommandRunner = {
    run: (cmd, args, o) => systemRunner.run('ip', ['netns', 'exec', hostNs, cmd, ...args], o),
  };
  const guard = new TapGuard(inHost, { table: TABLE });
  const listeners: ChildProcess[] = [];
  const ip = (...args: string[]) => runChecked(systemRunner, 'ip', args);
  // busybox waits up to 2 s for the one reply; success or failure is its exit status.
  const inGuest = async (...args: string[]) =>
    (await systemRunner.run('ip', ['netns', 'exec', guestNs, 'busybox', ...args])).code === 0;
  const ping = (src: string) => inGuest('ping', '-c1', '-W2', '-I', src, '10.77.9.1');
  const arping = (src: string) => inGuest('arping', '-c1', '-w2', '-I', 'eth0', '-s', src, '10.77.9.1');
  const ping6 = () => inGuest('ping6', '-c1', '-W2', '-I', 'eth0', 'fe80::1');
  const connects = (port: number) => inGuest('nc', '-w', '2', '10.77.9.1', String(port), '-e', 'true');

  beforeAll(async () => {
    await ip('netns', 'add', hostNs);
    await ip('netns', 'add', guestNs);
    await ip('-n', hostNs, 'link', 'add', 'nqbr-tg', 'type', 'bridge');
    await ip('-n', hostNs, 'addr', 'add', '10.77.9.1/24', 'dev', 'nqbr-tg');
    await ip('-n', hostNs, '-6', 'addr', 'add', 'fe80::1/64', 'dev', 'nqbr-tg', 'nodad');
    await ip('-n', hostNs, 'link', 'set', 'nqbr-tg', 'up');
    await ip('-n', hostNs, 'link', 'add', tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs);
    await ip('-n', hostNs, 'link', 'set', tap, 'master', 'nqbr-tg', 'up');
    await ip('-n', guestNs, 'link', 'set', 'eth0', 'address', MAC);
    await ip('-n', guestNs, 'addr', 'add', '10.77.9.2/24', 'dev', 'eth0');
    await ip('-n', guestNs, '-6', 'addr', 'add', `${linkLocalOf(MAC)}/64`, 'dev', 'eth0', 'nodad');
    await ip('-n', guestNs, 'link', 'set', 'eth0', 'up');
    await ip('-n', guestNs, 'link', 'set', 'lo', 'up');
    // Two TCP listeners on the host side: one meant for guests, one not.
    for (const port of ['7001', '7002']) {
      const l = spawn('ip', ['netns', 'exec', hostNs, 'busybox', 'nc', '-ll', '-p', port, '-e', 'true'], {
        stdio: 'ignore',
      });
      listeners.push(l);
    }
  });

  afterAll(async () => {
    for (const l of listeners) l.kill();
    await systemRunner.run('ip', ['netns', 'del', guestNs]);
    await systemRunner.run('ip', ['netns', 'del', hostNs]);
  });

  it('passes the guest’s own address, drops IPv4 and ARP from another', async () => {
    await guard.guard(tap, { ip: '10.77.9.2', mac: MAC, bridge: 'nqbr-tg' });
    expect(await ping('10.77.9.2')).toBe(true);
    expect(await arping('10.77.9.2')).toBe(true);
    await ip('-n', guestNs, 'addr', 'add', '10.77.9.3/32', 'dev', 'eth0');
    expect(await ping('10.77.9.3')).toBe(false);
    expect(await arping('10.77.9.3')).toBe(false);
  });

  it('drops frames with another MAC, even carrying the guest’s own address', async () => {
    await ip('-n', guestNs, 'link', 'set', 'eth0', 'address', '52:54:00:77:09:99');
    await ip('-n', guestNs, 'neigh', 'flush', 'dev', 'eth0');
    expect(await arping('10.77.9.2')).toBe(false);
    expect(await ping('10.77.9.2')).toBe(false);
    await ip('-n', guestNs, 'link', 'set', 'eth0', 'address', MAC);
    expect(await arping('10.77.9.2')).toBe(true);
    expect(await ping('10.77.9.2')).toBe(true);
  });

  it('IPv6: the link-local address of its MAC passes, any other source is dropped', async () => {
    const own = `${linkLocalOf(MAC)}/64`;
    // The MAC changes above may have left a link-local address made from the other MAC.
    await ip('-n', guestNs, '-6', 'addr', 'flush', 'dev', 'eth0', 'scope', 'link');
    await ip('-n', guestNs, '-6', 'addr', 'add', own, 'dev', 'eth0', 'nodad');
    expect(await ping6()).toBe(true);
    await ip('-n', guestNs, '-6', 'addr', 'del', own, 'dev', 'eth0');
    await ip('-n', guestNs, '-6', 'addr', 'add', 'fe80::99/64', 'dev', 'eth0', 'nodad');
    await ip('-n', guestNs, '-6', 'neigh', 'flush', 'dev', 'eth0');
    expect(await ping6()).toBe(false);
    await ip('-n', guestNs, '-6', 'addr', 'del', 'fe80::99/64', 'dev', 'eth0');
    await ip('-n', guestNs, '-6', 'addr', 'add', own, 'dev', 'eth0', 'nodad');
    // The solicitations sent from the dropped address left the host's entry failed in the guest's cache.
    await ip('-n', guestNs, '-6', 'neigh', 'flush', 'dev', 'eth0');
    expect(await ping6()).toBe(true);
  });

  it('input policy: a service meant for guests is reachable, any other host port is not', async () => {
    await guard.allowService('10.77.9.1', 7001);
    await until('the host listeners', async () =>
      (await inHost.run('busybox', ['netstat', '-ltn'])).stdout.includes(':7002'),
    );
    expect(await connects(7001)).toBe(true);
    expect(await connects(7002)).toBe(false);
  });

  it('after someone deletes the tables, verify() restores the guard', async () => {
    await inHost.run('nft', ['delete', 'table', 'bridge', TABLE]);
    await inHost.run('nft', ['delete', 'table', 'inet', TABLE]);
    expect(await ping('10.77.9.3')).toBe(true);
    expect(await connects(7002)).toBe(true);
    expect(await guard.verify()).toBe(true);
    expect(await ping('10.77.9.3')).toBe(false);
    expect(await connects(7002)).toBe(false);
    expect(await ping('10.77.9.2')).toBe(true);
  });

  it('unguarded, the TAP passes any address again', async () => {
    await guard.unguard(tap);
    expect(await arping('10.77.9.3')).toBe(true);
    expect(await ping('10.77.9.3')).toBe(true);
  });
});

async function until(what: string, fn: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
