import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type CommandRunner, runChecked, systemRunner } from '../../src/host/exec.ts';
import { TapGuard } from '../../src/mmds/guard.ts';
import { InvalidNetInput } from '../../src/net/errors.ts';

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

interface Listing {
  nftables: {
    set?: { name: string; type: unknown; elem?: unknown[] };
    chain?: { name: string; type?: string; hook?: string; prio?: number };
    rule?: { comment?: string };
  }[];
}

async function table() {
  const items = (JSON.parse(await runChecked(systemRunner, 'nft', ['-j', 'list', 'table', 'bridge', TABLE])) as Listing)
    .nftables;
  const elems = (name: string) => items.find((i) => i.set?.name === name)?.set?.elem ?? [];
  const text = await runChecked(systemRunner, 'nft', ['list', 'table', 'bridge', TABLE]);
  return {
    sets: items.flatMap((i) => (i.set ? [{ name: i.set.name, type: i.set.type }] : [])),
    chains: items.flatMap((i) => (i.chain ? [i.chain] : [])),
    rules: text.split('\n').flatMap((l) => (/ drop( |$)/.test(l) ? [l.trim()] : [])),
    oldRules: items.filter((i) => i.rule?.comment?.startsWith('nqvm-guard:')).length,
    guarded: elems('guarded').map(String).sort(),
    allowed: elems('allowed')
      .map((e) => (e as { concat: string[] }).concat.join(' '))
      .sort(),
  };
}

const SET_RULES = [
  'iifname @guarded iifname . ip saddr != @allowed drop',
  'iifname @guarded iifname . arp saddr ip != @allowed drop',
];

beforeEach(() => {
  runs.length = 0;
});

afterAll(async () => {
  await systemRunner.run('nft', ['delete', 'table', 'bridge', TABLE]);
  rmSync(MARK, { force: true });
});

describe('TapGuard on real nftables (own table, private netns)', () => {
  const guard = new TapGuard(counting, { table: TABLE });

  it('sets the table up once even when five boots guard at the same time', async () => {
    await Promise.all([0, 1, 2, 3, 4].map((i) => guard.guard(`nqt-ga${i}`, `10.77.0.${10 + i}`)));
    expect(listRuns()).toBe(1);
    // One list, one batch creating table, sets, chain and rules, then one run per TAP.
    expect(runs).toHaveLength(7);
    const t = await table();
    expect(t.sets).toEqual([
      { name: 'guarded', type: 'ifname' },
      { name: 'allowed', type: ['ifname', 'ipv4_addr'] },
    ]);
    expect(t.chains).toMatchObject([{ name: 'prerouting', type: 'filter', hook: 'prerouting', prio: -200 }]);
    expect(t.rules).toEqual(SET_RULES);
    expect(t.guarded).toEqual(['nqt-ga0', 'nqt-ga1', 'nqt-ga2', 'nqt-ga3', 'nqt-ga4']);
    expect(t.allowed).toEqual([0, 1, 2, 3, 4].map((i) => `nqt-ga${i} 10.77.0.${10 + i}`));
  });

  it('guards another TAP with exactly one nft run, accepting a CIDR', async () => {
    await guard.guard('nqt-ga5', '10.77.0.15/24');
    expect(runs).toHaveLength(1);
    expect(runs[0]?.[1]).toBe('-j');
    const t = await table();
    expect(t.guarded).toContain('nqt-ga5');
    expect(t.allowed).toContain('nqt-ga5 10.77.0.15');
    expect(t.rules).toEqual(SET_RULES);
  });

  it('re-guarding a TAP with a new address leaves only the new pair, in one run', async () => {
    await guard.guard('nqt-ga0', '10.77.0.99');
    expect(runs).toHaveLength(1);
    const t = await table();
    expect(t.allowed.filter((a) => a.startsWith('nqt-ga0 '))).toEqual(['nqt-ga0 10.77.0.99']);
    expect(t.guarded.filter((g) => g === 'nqt-ga0')).toHaveLength(1);
  });

  it('concurrent re-guards of one TAP end with the last address only', async () => {
    await Promise.all([guard.guard('nqt-ga4', '10.77.0.41'), guard.guard('nqt-ga4', '10.77.0.42')]);
    const t = await table();
    expect(t.allowed.filter((a) => a.startsWith('nqt-ga4 '))).toEqual(['nqt-ga4 10.77.0.42']);
  });

  it('unguard removes the TAP from both sets in one run; an unknown TAP costs none', async () => {
    await guard.unguard('nqt-ga1');
    expect(runs).toHaveLength(1);
    const t = await table();
    expect(t.guarded).not.toContain('nqt-ga1');
    expect(t.allowed.some((a) => a.startsWith('nqt-ga1 '))).toBe(false);
    runs.length = 0;
    await guard.unguard('nqt-never');
    expect(runs).toHaveLength(0);
  });

  it('after someone flushed a set, unguard re-lists once and still removes what is left', async () => {
    await runChecked(systemRunner, 'nft', ['flush', 'set', 'bridge', TABLE, 'allowed']);
    await guard.unguard('nqt-ga2');
    // The failed batch, one re-list, the retry built from what the kernel really holds.
    expect(runs).toHaveLength(3);
    expect(listRuns()).toBe(1);
    const t = await table();
    expect(t.guarded).not.toContain('nqt-ga2');
    expect(t.allowed).toEqual([]);
    await guard.guard('nqt-ga2', '10.77.0.12');
    expect((await table()).allowed).toEqual(['nqt-ga2 10.77.0.12']);
  });

  it('a restarted agent adopts existing elements and converts old per-TAP rules without duplicating its own', async () => {
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
    // List, converge (old rules out, their TAP into the sets), then the unguard it already knew the address for.
    expect(runs).toHaveLength(3);
    const t = await table();
    expect(t.oldRules).toBe(0);
    expect(t.rules).toEqual(SET_RULES);
    expect(t.guarded).toEqual(['nqt-ga0', 'nqt-ga2', 'nqt-ga4', 'nqt-ga5', 'nqt-old1']);
    // The flush above emptied `allowed`: the other TAPs stay guarded with no address allowed (fail closed).
    expect(t.allowed).toEqual(['nqt-ga2 10.77.0.12', 'nqt-old1 10.77.0.50']);

    runs.length = 0;
    await restarted.guard('nqt-ga0', '10.77.0.10');
    await restarted.unguard('nqt-old1');
    expect(runs).toHaveLength(2);
    const after = await table();
    expect(after.allowed).toEqual(['nqt-ga0 10.77.0.10', 'nqt-ga2 10.77.0.12']);
    expect(after.guarded).not.toContain('nqt-old1');
  });

  it('refuses injected TAP names, addresses and table names before anything runs', async () => {
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
      await expect(guard.guard(p, '10.77.0.1')).rejects.toBeInstanceOf(InvalidNetInput);
      await expect(guard.unguard(p)).rejects.toBeInstanceOf(InvalidNetInput);
    }
    for (const ip of [`10.77.0.1;touch ${MARK}`, `$(touch ${MARK})`, '10.77.0.256', '@allowed']) {
      await expect(guard.guard('nqt-ga9', ip)).rejects.toBeInstanceOf(InvalidNetInput);
    }
    expect(() => new TapGuard(counting, { table: `t;touch ${MARK}` })).toThrow(/must match/);
    expect(runs).toHaveLength(0);
    expect(existsSync(MARK)).toBe(false);
  });
});

describe('TapGuard drops spoofed frames on a real bridge (own host and guest namespaces)', () => {
  const id = randomBytes(3).toString('hex');
  const hostNs = `nqvm-tgh-${id}`;
  const guestNs = `nqvm-tgg-${id}`;
  const tap = `nqt-tg${id}`;
  const inHost: CommandRunner = {
    run: (cmd, args, o) => systemRunner.run('ip', ['netns', 'exec', hostNs, cmd, ...args], o),
  };
  const guard = new TapGuard(inHost, { table: TABLE });
  const ip = (...args: string[]) => runChecked(systemRunner, 'ip', args);
  // busybox waits up to 2 s for the one reply; success or failure is its exit status.
  const answered = async (...args: string[]) =>
    (await systemRunner.run('ip', ['netns', 'exec', guestNs, 'busybox', ...args])).code === 0;
  const ping = (src: string) => answered('ping', '-c1', '-W2', '-I', src, '10.77.9.1');
  const arping = (src: string) => answered('arping', '-c1', '-w2', '-I', 'eth0', '-s', src, '10.77.9.1');

  beforeAll(async () => {
    await ip('netns', 'add', hostNs);
    await ip('netns', 'add', guestNs);
    await ip('-n', hostNs, 'link', 'add', 'nqbr-tg', 'type', 'bridge');
    await ip('-n', hostNs, 'addr', 'add', '10.77.9.1/24', 'dev', 'nqbr-tg');
    await ip('-n', hostNs, 'link', 'set', 'nqbr-tg', 'up');
    await ip('-n', hostNs, 'link', 'add', tap, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs);
    await ip('-n', hostNs, 'link', 'set', tap, 'master', 'nqbr-tg', 'up');
    await ip('-n', guestNs, 'addr', 'add', '10.77.9.2/24', 'dev', 'eth0');
    await ip('-n', guestNs, 'link', 'set', 'eth0', 'up');
  });

  afterAll(async () => {
    await systemRunner.run('ip', ['netns', 'del', guestNs]);
    await systemRunner.run('ip', ['netns', 'del', hostNs]);
  });

  it('passes the guest’s own address, drops IPv4 and ARP from another, and lets it go once unguarded', async () => {
    await guard.guard(tap, '10.77.9.2');
    expect(await ping('10.77.9.2')).toBe(true);
    expect(await arping('10.77.9.2')).toBe(true);
    await ip('-n', guestNs, 'addr', 'add', '10.77.9.3/32', 'dev', 'eth0');
    expect(await ping('10.77.9.3')).toBe(false);
    expect(await arping('10.77.9.3')).toBe(false);
    await guard.unguard(tap);
    expect(await arping('10.77.9.3')).toBe(true);
    expect(await ping('10.77.9.3')).toBe(true);
  });
});
