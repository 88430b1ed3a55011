import { CommandFailed, type CommandRunner, runChecked } from '../host/exec.ts';
import { assertBridgeName, assertMac, assertTapName, parseCidr } from './names.ts';

// Why: a guest must not pose as another VM, nor reach host services not meant for it. MMDS and the guest endpoint
// identify a guest by its source address, so every frame from a VM's TAP must carry the VM's own MAC and addresses.
// Two tables of the same name (sets, not rules per TAP: guarding a TAP is one `add element` run, lookups O(1)):
//
//   table bridge nqvm_guard          frames from a guarded TAP
//     prerouting: ether / ARP sender MAC = the TAP's MAC; IPv4 / ARP sender IP = its address; IPv6 source = its
//     link-local or ::; no router advertisements or redirects; a neighbour advertisement names only its own address,
//     and the link-layer option of a solicitation or advertisement carries its own MAC.
//     input (to the host itself): connections only to the services meant for guests (MMDS, the guest endpoint);
//     replies to the host's own connections, ping and ICMP errors; nothing else. Stateless (this kernel kind has no
//     bridge conntrack): a guest cannot open a TCP connection without a SYN, and a bare SYN is what is filtered.
//   table inet nqvm_guard
//     forward: nothing is routed from one guest bridge (network) to another. An isolated TAP (a restored instance
//     off the bridge, still holding its source's address and token) only answers the host.
//
// The agent's memory is the desired state: a table that went missing or lost rules or elements is rewritten whole,
// in one atomic nft transaction, so no TAP is ever unguarded while it is repaired.

const CHAIN = 'prerouting';
const OLD_COMMENT = 'nqvm-guard:';
const TABLE_NAME = /^[a-z][a-z0-9_]{0,31}$/;
/** Rules the bridge table's chain must hold; fewer means someone removed some. */
const BRIDGE_RULES = 13;
const INET_RULES = 4;

/** What a TAP may send: its VM's address, MAC, and the bridge (network) it sits on. */
export interface GuardedNic {
  /** A bare address or a CIDR. */
  ip: string;
  mac: string;
  bridge: string;
}

/** One TAP's desired state; TAPs adopted from an older agent may lack a MAC or bridge until they are guarded again. */
interface TapState {
  ip: string;
  mac?: string;
  bridge?: string;
}

interface NftSet {
  name?: string;
  elem?: unknown[];
}
interface NftRule {
  chain?: string;
  comment?: string;
  expr?: { match?: { op?: string; left?: unknown; right?: unknown } }[];
}
interface Listing {
  nftables?: { set?: NftSet; chain?: { name?: string }; rule?: NftRule }[];
}

const missing = (e: unknown) => e instanceof CommandFailed && /No such file or directory/.test(e.result.stderr);

/** The modified EUI-64 interface identifier Linux derives from a MAC: 8 bytes. */
function eui64(mac: string): number[] {
  const b = assertMac(mac)
    .split(':')
    .map((h) => Number.parseInt(h, 16));
  return [(b[0] ?? 0) ^ 2, b[1] ?? 0, b[2] ?? 0, 0xff, 0xfe, b[3] ?? 0, b[4] ?? 0, b[5] ?? 0];
}

/** The IPv6 link-local address a Linux guest derives from its MAC. */
export function linkLocalOf(mac: string): string {
  const e = eui64(mac);
  const groups = [0, 2, 4, 6].map((i) => (((e[i] ?? 0) << 8) | (e[i + 1] ?? 0)).toString(16));
  return `fe80::${groups.join(':')}`;
}

/** The same address as the 128-bit integer a raw-payload set holds. */
function linkLocalHex(mac: string): string {
  return `0xfe80${'0'.repeat(12)}${eui64(mac)
    .map((x) => x.toString(16).padStart(2, '0'))
    .join('')}`;
}

/** The address an old per-TAP rule allowed (`ip saddr != A drop`), so an upgraded host keeps its VMs guarded. */
function oldRuleAddress(rule: NftRule): string | undefined {
  for (const e of rule.expr ?? []) {
    const m = e.match;
    const p = (m?.left as { payload?: { protocol?: string; field?: string } } | undefined)?.payload;
    if (m?.op === '!=' && p?.protocol === 'ip' && p.field === 'saddr' && typeof m.right === 'string') return m.right;
  }
  return undefined;
}

function valid<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** The parts of a concatenated set element as `nft -j` lists it. */
const concat = (e: unknown): unknown[] =>
  typeof e === 'object' && e !== null && Array.isArray((e as { concat?: unknown }).concat)
    ? (e as { concat: unknown[] }).concat
    : [];
const quoted = (name: string) => `"${name}"`;
const elements = (items: string[]) => (items.length ? ` elements = { ${items.join(', ')} };` : '');

/**
 * Pins each VM's TAP to its MAC and addresses, and limits what guests reach on the host. One per agent: the first
 * call lists what an earlier agent left and writes both tables whole; after that each guard or unguard is a single
 * `nft` run. `verify()` (run every `checkIntervalMs` once `start()`ed) rewrites them when anything went missing.
 */
export class TapGuard {
  private readonly table: string;
  private ready: Promise<void> | undefined;
  private taps = new Map<string, TapState>();
  private bridges = new Set<string>();
  private services = new Set<string>();
  private isolated = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly runner: CommandRunner,
    private readonly opts: { table?: string; checkIntervalMs?: number; onRepair?: (what: string) => void } = {},
  ) {
    const table = opts.table ?? 'nqvm_guard';
    if (!TABLE_NAME.test(table)) throw new Error(`nft table ${JSON.stringify(table)} must match ${TABLE_NAME}`);
    this.table = table;
  }

  /** Lets only the NIC's MAC and address (a bare address or a CIDR's) out of `tap`; replaces what it allowed before. */
  async guard(tap: string, nic: GuardedNic): Promise<void> {
    const t = assertTapName(tap);
    const next: TapState = {
      ip: parseCidr(`${nic.ip.split('/')[0]}/32`).address,
      mac: assertMac(nic.mac.toLowerCase()),
      bridge: assertBridgeName(nic.bridge),
    };
    await this.serial(async () => {
      await this.setup();
      const was = this.taps.get(t);
      const newBridge = !this.bridges.has(next.bridge as string);
      this.taps.set(t, next);
      if (newBridge) {
        this.bridges.add(next.bridge as string);
        return this.apply();
      }
      const del = was ? this.tapElements(t, was).filter((e) => !this.tapElements(t, next).includes(e)) : [];
      await this.elements([
        ...del.map((e) => `delete element ${e}`),
        ...this.tapElements(t, next).map((e) => `add element ${e}`),
      ]);
    });
  }

  /** Forgets `tap`; a TAP this guard does not know costs no run. */
  async unguard(tap: string): Promise<void> {
    const t = assertTapName(tap);
    await this.serial(async () => {
      await this.setup();
      const was = this.taps.get(t);
      const cmds = was ? this.tapElements(t, was).map((e) => `delete element ${e}`) : [];
      if (this.isolated.delete(t)) cmds.push(`delete element inet ${this.table} isolated { ${quoted(t)} }`);
      this.taps.delete(t);
      await this.elements(cmds);
    });
  }

  /**
   * While a restored instance still holds its source's identity, its TAP (off the bridge) only answers the host: it
   * reaches no host service and nothing is routed from it. `release` ends that once it has its own.
   */
  async isolate(tap: string): Promise<void> {
    const t = assertTapName(tap);
    await this.serial(async () => {
      await this.setup();
      this.isolated.add(t);
      await this.elements([`add element inet ${this.table} isolated { ${quoted(t)} }`]);
    });
  }

  async release(tap: string): Promise<void> {
    const t = assertTapName(tap);
    await this.serial(async () => {
      await this.setup();
      if (this.isolated.delete(t)) await this.elements([`delete element inet ${this.table} isolated { ${quoted(t)} }`]);
    });
  }

  /** Lets guests reach `address:port` (TCP) on the host: the MMDS listener, the guest endpoint. */
  async allowService(address: string, port: number): Promise<void> {
    const addr = parseCidr(`${address}/32`).address;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port ${port} out of range`);
    const key = `${addr} . ${port}`;
    await this.serial(async () => {
      await this.setup();
      if (this.services.has(key)) return;
      this.services.add(key);
      await this.elements([`add element bridge ${this.table} services { ${key} }`]);
    });
  }

  /** Checks both tables against what this guard holds and rewrites them whole if anything is missing. */
  verify(): Promise<boolean> {
    return this.serial(async () => {
      await this.setup();
      const problem = await this.drift();
      if (!problem) return false;
      this.opts.onRepair?.(problem);
      await this.apply();
      return true;
    });
  }

  /** Verifies every `checkIntervalMs` (default 5 s) until `stop()`. */
  start(): void {
    if (this.timer) return;
    const every = this.opts.checkIntervalMs ?? 5000;
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.verify()
          .catch((err: unknown) => this.opts.onRepair?.(`verify failed: ${(err as Error).message}`))
          .finally(() => {
            if (this.timer) tick();
          });
      }, every);
      this.timer.unref();
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The set elements a TAP's state stands for, as `<family> <table> <set> { <elem> }` clauses. */
  private tapElements(t: string, s: TapState): string[] {
    const b = `bridge ${this.table}`;
    const out = [`${b} guarded { ${quoted(t)} }`, `${b} allowed { ${quoted(t)} . ${s.ip} }`];
    if (s.mac) {
      out.push(
        `${b} pinned { ${quoted(t)} }`,
        `${b} macs { ${quoted(t)} . ${s.mac} }`,
        `${b} allowed6 { ${quoted(t)} . ${linkLocalOf(s.mac)}, ${quoted(t)} . :: }`,
        `${b} nd_targets { ${quoted(t)} . ${linkLocalHex(s.mac)} }`,
        `${b} nd_lladdr { ${quoted(t)} . 0x${s.mac.replaceAll(':', '')} }`,
      );
    }
    return out;
  }

  /** One nft run for element changes; if a table or set is gone (a flush), the whole state is written instead. */
  private async elements(cmds: string[]): Promise<void> {
    if (!cmds.length) return;
    try {
      await this.nft(cmds.join('\n'));
    } catch (e) {
      if (!missing(e)) throw e;
      this.opts.onRepair?.('a guard table or set went missing');
      await this.apply();
    }
  }

  private setup(): Promise<void> {
    if (!this.ready) {
      const p = this.adopt().then(() => this.apply());
      this.ready = p;
      p.catch(() => {
        if (this.ready === p) this.ready = undefined;
      });
    }
    return this.ready;
  }

  private async list(family: 'bridge' | 'inet'): Promise<Listing['nftables'] | undefined> {
    const args = ['-j', 'list', 'table', family, this.table];
    const res = await this.runner.run('nft', args);
    if (res.code !== 0) {
      if (/No such file or directory/.test(res.stderr)) return undefined;
      throw new CommandFailed('nft', args, res);
    }
    return (JSON.parse(res.stdout) as Listing).nftables ?? [];
  }

  /** Takes over what an earlier agent left: its TAPs (with their MACs), bridges, services and old per-TAP rules. */
  private async adopt(): Promise<void> {
    const items = (await this.list('bridge')) ?? [];
    const taps = new Map<string, TapState>();
    const macs = new Map<string, string>();
    const guarded = new Set<string>();
    for (const i of items) {
      const s = i.set;
      if (s?.name === 'guarded') for (const e of s.elem ?? []) if (typeof e === 'string') guarded.add(e);
      if (s?.name === 'services')
        for (const e of s.elem ?? []) {
          const [a, p] = concat(e);
          if (typeof a === 'string' && typeof p === 'number' && valid(() => parseCidr(`${a}/32`)))
            this.services.add(`${a} . ${p}`);
        }
      for (const e of s?.elem ?? []) {
        const [tap, v] = concat(e);
        if (typeof tap !== 'string' || typeof v !== 'string' || !valid(() => assertTapName(tap))) continue;
        if (s?.name === 'allowed' && valid(() => parseCidr(`${v}/32`))) taps.set(tap, { ...taps.get(tap), ip: v });
        if (s?.name === 'macs' && valid(() => assertMac(v))) macs.set(tap, v);
      }
      const r = i.rule;
      const tap = r?.comment?.startsWith(OLD_COMMENT)
        ? valid(() => assertTapName(r.comment?.slice(OLD_COMMENT.length)))
        : undefined;
      const ip = r && oldRuleAddress(r);
      if (tap && ip && !taps.has(tap)) taps.set(tap, { ip });
    }
    for (const [tap, s] of taps) {
      const mac = macs.get(tap);
      if (mac) s.mac = mac;
    }
    // A TAP guarded with no address left (someone flushed `allowed`) stays guarded with none: it fails closed.
    for (const tap of guarded) if (!taps.has(tap)) taps.set(tap, { ip: '0.0.0.0' });
    const inet = (await this.list('inet')) ?? [];
    for (const i of inet) {
      if (i.set?.name === 'isolated')
        for (const e of i.set.elem ?? [])
          if (typeof e === 'string' && valid(() => assertTapName(e))) this.isolated.add(e);
      if (i.set?.name === 'bridges')
        for (const e of i.set.elem ?? [])
          if (typeof e === 'string' && valid(() => assertBridgeName(e))) this.bridges.add(e);
    }
    for (const [tap, s] of taps) if (!this.taps.has(tap)) this.taps.set(tap, s);
  }

  /** What is missing from the kernel compared with this guard's state, or undefined when nothing is. */
  private async drift(): Promise<string | undefined> {
    const [bridge, inet] = await Promise.all([this.list('bridge'), this.list('inet')]);
    if (!bridge || !inet) return 'a guard table is missing';
    const rules = (l: Listing['nftables']) => (l ?? []).filter((i) => i.rule).length;
    if (rules(bridge) < BRIDGE_RULES || rules(inet) < INET_RULES) return 'guard rules are missing';
    const count = (l: Listing['nftables'], name: string) =>
      l?.find((i) => i.set?.name === name)?.set?.elem?.length ?? 0;
    const pinned = [...this.taps.values()].filter((s) => s.mac).length;
    if (count(bridge, 'guarded') < this.taps.size || count(bridge, 'allowed') < this.taps.size)
      return 'guarded TAPs are missing';
    if (count(bridge, 'macs') < pinned || count(bridge, 'allowed6') < 2 * pinned) return 'pinned MACs are missing';
    if (count(inet, 'bridges') < this.bridges.size || count(bridge, 'services') < this.services.size)
      return 'guest bridges or services are missing';
    if (count(inet, 'isolated') < this.isolated.size) return 'isolated TAPs are missing';
    return undefined;
  }

  /** Writes both tables whole from this guard's state, in one transaction. */
  private async apply(): Promise<void> {
    const b = `bridge ${this.table}`;
    const i = `inet ${this.table}`;
    const taps = [...this.taps.entries()];
    const pinned = taps.filter(([, s]) => s.mac) as [string, TapState & { mac: string }][];
    const bridges = [...this.bridges];
    const crossing = bridges.flatMap((x) => bridges.filter((y) => y !== x).map((y) => `${quoted(x)} . ${quoted(y)}`));
    const text = [
      `table ${b} {}`,
      `delete table ${b}`,
      `table ${i} {}`,
      `delete table ${i}`,
      `table ${b} {`,
      `  set guarded { type ifname;${elements(taps.map(([t]) => quoted(t)))} }`,
      `  set allowed { type ifname . ipv4_addr;${elements(taps.map(([t, s]) => `${quoted(t)} . ${s.ip}`))} }`,
      `  set pinned { type ifname;${elements(pinned.map(([t]) => quoted(t)))} }`,
      `  set macs { type ifname . ether_addr;${elements(pinned.map(([t, s]) => `${quoted(t)} . ${s.mac}`))} }`,
      `  set allowed6 { type ifname . ipv6_addr;${elements(pinned.flatMap(([t, s]) => [`${quoted(t)} . ${linkLocalOf(s.mac)}`, `${quoted(t)} . ::`]))} }`,
      `  set nd_targets { typeof iifname . @th,64,128;${elements(pinned.map(([t, s]) => `${quoted(t)} . ${linkLocalHex(s.mac)}`))} }`,
      `  set nd_lladdr { typeof iifname . @th,208,48;${elements(pinned.map(([t, s]) => `${quoted(t)} . 0x${s.mac.replaceAll(':', '')}`))} }`,
      `  chain ${CHAIN} {`,
      '    type filter hook prerouting priority -200; policy accept;',
      '    iifname @guarded iifname . ip saddr != @allowed drop',
      '    iifname @guarded iifname . arp saddr ip != @allowed drop',
      '    iifname @pinned iifname . ether saddr != @macs drop',
      '    iifname @pinned iifname . arp saddr ether != @macs drop',
      '    iifname @pinned iifname . ip6 saddr != @allowed6 drop',
      '    iifname @pinned icmpv6 type { nd-router-advert, nd-redirect } drop',
      '    iifname @pinned icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @nd_targets drop',
      // The first option of a solicitation (1) or advertisement (2) is the sender's own link-layer address.
      '    iifname @pinned icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } @th,192,8 { 1, 2 } iifname . @th,208,48 != @nd_lladdr drop',
      '  }',
      `  set services { type ipv4_addr . inet_service;${elements([...this.services])} }`,
      '  chain input {',
      '    type filter hook input priority -200; policy accept;',
      '    iifname @guarded tcp flags & (syn | ack) == syn ip daddr . tcp dport != @services drop',
      '    iifname @guarded ip6 nexthdr tcp tcp flags & (syn | ack) == syn drop',
      '    iifname @guarded ip protocol != { tcp, icmp } drop',
      '    iifname @guarded ip6 nexthdr != { tcp, ipv6-icmp } drop',
      '    iifname @guarded icmp type != { echo-request, echo-reply, destination-unreachable, time-exceeded } drop',
      '  }',
      '}',
      `table ${i} {`,
      `  set bridges { type ifname;${elements(bridges.map(quoted))} }`,
      `  set crossing { type ifname . ifname;${elements(crossing)} }`,
      `  set isolated { type ifname;${elements([...this.isolated].map(quoted))} }`,
      '  chain input {',
      '    type filter hook input priority -10; policy accept;',
      '    iifname @isolated ct state established,related accept',
      '    iifname @isolated drop',
      '  }',
      '  chain forward {',
      '    type filter hook forward priority -10; policy accept;',
      '    iifname @isolated drop',
      '    iifname . oifname @crossing drop',
      '  }',
      '}',
    ];
    await this.nft(text.join('\n'));
  }

  /** One argv element, not stdin: nft opens /dev/stdin, which fails on the socket pipes Node spawns with. */
  private async nft(text: string): Promise<void> {
    await runChecked(this.runner, 'nft', [text]);
  }

  /** One change at a time, so this guard's state is always what the kernel was last told. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.catch(() => undefined);
    return next;
  }
}
