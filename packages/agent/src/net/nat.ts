import type { NetCommands } from './commands.ts';
import { assertBridgeName, assertInterfaceName, parseCidr } from './names.ts';

// nftables, not iptables: Debian 12's default backend, and JSON in and out means no rule text is ever parsed or quoted.
const TABLE = 'nqvm';
const CHAIN = 'postrouting';
const FAMILY = 'ip';

export interface NatSpec {
  bridge: string;
  /** The bridge's network, e.g. `10.213.0.0/24`; a host form such as `10.213.0.1/24` is normalised. */
  cidr: string;
  uplink: string;
}

export interface NatRule extends NatSpec {
  handle: number;
}

interface NftRule {
  handle?: number;
  comment?: string;
  expr?: {
    match?: {
      left?: { payload?: { field?: string }; meta?: { key?: string } };
      right?: unknown;
    };
  }[];
}

function commentFor(bridge: string): string {
  return `nqvm-nat:${bridge}`;
}

/** Masquerades traffic from the bridge's network leaving through the uplink, and turns on IPv4 forwarding. */
export async function enableNat(net: NetCommands, spec: NatSpec): Promise<void> {
  const bridge = assertBridgeName(spec.bridge);
  const uplink = assertInterfaceName(spec.uplink);
  const c = parseCidr(spec.cidr);
  const want: NatSpec = { bridge, cidr: c.cidr, uplink };
  await net.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  await nft(net, [
    { add: { table: { family: FAMILY, name: TABLE } } },
    {
      add: {
        chain: {
          family: FAMILY,
          table: TABLE,
          name: CHAIN,
          type: 'nat',
          hook: 'postrouting',
          prio: 100,
          policy: 'accept',
        },
      },
    },
  ]);
  const mine = (await natRules(net)).filter((r) => r.bridge === bridge);
  if (mine.length === 1 && mine[0]?.cidr === want.cidr && mine[0]?.uplink === want.uplink) return;
  await nft(net, [
    ...mine.map((r) => deleteRule(r.handle)),
    {
      add: {
        rule: {
          family: FAMILY,
          table: TABLE,
          chain: CHAIN,
          comment: commentFor(bridge),
          expr: [
            {
              match: {
                op: '==',
                left: { payload: { protocol: 'ip', field: 'saddr' } },
                right: { prefix: { addr: c.network, len: c.prefix } },
              },
            },
            { match: { op: '==', left: { meta: { key: 'oifname' } }, right: uplink } },
            { masquerade: null },
          ],
        },
      },
    },
  ]);
}

/** Removes the bridge's masquerade rule; ip_forward is left on since other bridges may rely on it. */
export async function disableNat(net: NetCommands, bridge: string): Promise<void> {
  assertBridgeName(bridge);
  const mine = (await natRules(net)).filter((r) => r.bridge === bridge);
  if (mine.length > 0)
    await nft(
      net,
      mine.map((r) => deleteRule(r.handle)),
    );
}

/** The NAT rules nqvm owns (recognised by their comment), as the kernel reports them. */
export async function natRules(net: NetCommands): Promise<NatRule[]> {
  let out: string;
  try {
    out = await net.exec('nft', ['-j', 'list', 'chain', FAMILY, TABLE, CHAIN]);
  } catch (e) {
    if (e instanceof Error && /No such file or directory/.test(e.message)) return [];
    throw e;
  }
  const items = (JSON.parse(out) as { nftables?: { rule?: NftRule }[] }).nftables ?? [];
  const rules: NatRule[] = [];
  for (const item of items) {
    const rule = item.rule;
    if (!rule?.comment?.startsWith('nqvm-nat:') || rule.handle === undefined) continue;
    let cidr = '';
    let uplink = '';
    for (const e of rule.expr ?? []) {
      const right = e.match?.right;
      if (e.match?.left?.payload?.field === 'saddr' && typeof right === 'object' && right && 'prefix' in right) {
        const p = (right as { prefix: { addr: string; len: number } }).prefix;
        cidr = `${p.addr}/${p.len}`;
      }
      if (e.match?.left?.meta?.key === 'oifname' && typeof right === 'string') uplink = right;
    }
    rules.push({ bridge: rule.comment.slice('nqvm-nat:'.length), cidr, uplink, handle: rule.handle });
  }
  return rules;
}

function deleteRule(handle: number): object {
  return { delete: { rule: { family: FAMILY, table: TABLE, chain: CHAIN, handle } } };
}

async function nft(net: NetCommands, commands: object[]): Promise<void> {
  // One argv element, not stdin: nft opens /dev/stdin, which fails on the socket pipes Node spawns with.
  await net.exec('nft', ['-j', JSON.stringify({ nftables: commands })]);
}
