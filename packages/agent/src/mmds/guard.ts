import type { CommandRunner } from '../host/exec.ts';
import { runChecked } from '../host/exec.ts';
import { assertTapName, parseCidr } from '../net/names.ts';

// A bridge-family table: frames from a VM's TAP carrying another source address never reach the bridge.
const FAMILY = 'bridge';
const TABLE = 'nqvm_guard';
const CHAIN = 'prerouting';

interface NftRule {
  handle?: number;
  comment?: string;
}

const commentFor = (tap: string) => `nqvm-guard:${tap}`;

async function nft(r: CommandRunner, commands: object[]): Promise<void> {
  await runChecked(r, 'nft', ['-j', JSON.stringify({ nftables: commands })]);
}

async function rulesOf(r: CommandRunner, tap: string): Promise<number[]> {
  const res = await r.run('nft', ['-j', 'list', 'chain', FAMILY, TABLE, CHAIN]);
  if (res.code !== 0) return [];
  const items = (JSON.parse(res.stdout) as { nftables?: { rule?: NftRule }[] }).nftables ?? [];
  return items.flatMap((i) => (i.rule?.comment === commentFor(tap) && i.rule.handle ? [i.rule.handle] : []));
}

/** Drops IPv4 and ARP from `tap` whose sender address is not `ip`, so a guest cannot pose as another VM. */
export async function guardTap(r: CommandRunner, tap: string, ip: string): Promise<void> {
  const t = assertTapName(tap);
  const addr = parseCidr(`${ip.split('/')[0]}/32`).address;
  const old = await rulesOf(r, t);
  const iif = { match: { op: '==', left: { meta: { key: 'iifname' } }, right: t } };
  const rule = (proto: 'ip' | 'arp', field: string) => ({
    add: {
      rule: {
        family: FAMILY,
        table: TABLE,
        chain: CHAIN,
        comment: commentFor(t),
        expr: [
          iif,
          { match: { op: '==', left: { payload: { protocol: 'ether', field: 'type' } }, right: proto } },
          { match: { op: '!=', left: { payload: { protocol: proto, field } }, right: addr } },
          { drop: null },
        ],
      },
    },
  });
  await nft(r, [
    { add: { table: { family: FAMILY, name: TABLE } } },
    {
      add: {
        chain: { family: FAMILY, table: TABLE, name: CHAIN, type: 'filter', hook: 'prerouting', prio: -200 },
      },
    },
    ...old.map((handle) => ({ delete: { rule: { family: FAMILY, table: TABLE, chain: CHAIN, handle } } })),
    rule('ip', 'saddr'),
    rule('arp', 'saddr ip'),
  ]);
}

export async function unguardTap(r: CommandRunner, tap: string): Promise<void> {
  const t = assertTapName(tap);
  const old = await rulesOf(r, t);
  if (old.length)
    await nft(
      r,
      old.map((handle) => ({ delete: { rule: { family: FAMILY, table: TABLE, chain: CHAIN, handle } } })),
    );
}
