import { CommandFailed, type CommandRunner, runChecked } from '../host/exec.ts';
import { assertTapName, parseCidr } from '../net/names.ts';

// Why: a guest must not pose as another VM. MMDS (and the guest endpoints) identify a guest by its source address,
// so frames from a VM's TAP carrying any other IPv4 or ARP sender address are dropped before they reach the bridge.
// Two sets and two fixed rules, not rules per TAP: guarding a TAP is one `add element` run, and lookups stay O(1).
//
//   table bridge nqvm_guard {
//     set guarded { type ifname; }
//     set allowed { type ifname . ipv4_addr; }
//     chain prerouting {
//       type filter hook prerouting priority -200;
//       iifname @guarded iifname . ip saddr != @allowed drop
//       iifname @guarded iifname . arp saddr ip != @allowed drop
//     }
//   }

const FAMILY = 'bridge';
const CHAIN = 'prerouting';
const GUARDED = 'guarded';
const ALLOWED = 'allowed';
const OLD_COMMENT = 'nqvm-guard:';
const TABLE_NAME = /^[a-z][a-z0-9_]{0,31}$/;

type Proto = 'ip' | 'arp';
const FIELD: Record<Proto, string> = { ip: 'saddr', arp: 'saddr ip' };

interface NftExpr {
  match?: { op?: string; left?: unknown; right?: unknown };
}
interface NftRule {
  handle?: number;
  comment?: string;
  expr?: NftExpr[];
}
interface NftSet {
  name?: string;
  elem?: unknown[];
}
interface Listing {
  nftables?: { set?: NftSet; chain?: { name?: string }; rule?: NftRule }[];
}

/** What the kernel holds for one TAP: whether it is in `guarded`, and its `allowed` address. */
interface TapState {
  guarded: boolean;
  ip?: string;
}

const missing = (e: unknown) => e instanceof CommandFailed && /No such file or directory/.test(e.result.stderr);

/** Which of our two set rules this is, by shape: `… iifname . <proto> <field> != @allowed …`. */
function setRuleKind(rule: NftRule): Proto | undefined {
  for (const e of rule.expr ?? []) {
    const m = e.match;
    if (m?.op !== '!=' || m.right !== `@${ALLOWED}`) continue;
    const parts = (m.left as { concat?: { payload?: { protocol?: string; field?: string } }[] } | undefined)?.concat;
    const p = parts?.[1]?.payload;
    for (const proto of ['ip', 'arp'] as const) if (p?.protocol === proto && p.field === FIELD[proto]) return proto;
  }
  return undefined;
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

function validTap(tap: string): string | undefined {
  try {
    return assertTapName(tap);
  } catch {
    return undefined;
  }
}

/**
 * Drops IPv4 and ARP from a VM's TAP whose sender address is not the VM's own. One per agent: the first call lists
 * the table once and converges it (creates what is missing, migrates old per-TAP rules); after that each guard or
 * unguard is a single `nft` run, with the kernel's elements mirrored in memory.
 */
export class TapGuard {
  private readonly table: string;
  private ready: Promise<void> | undefined;
  private state = new Map<string, TapState>();
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    private readonly runner: CommandRunner,
    opts: { table?: string } = {},
  ) {
    const table = opts.table ?? 'nqvm_guard';
    if (!TABLE_NAME.test(table)) throw new Error(`nft table ${JSON.stringify(table)} must match ${TABLE_NAME}`);
    this.table = table;
  }

  /** Lets only `ip` (a bare address or a CIDR's address) out of `tap`; replaces an address it allowed before. */
  async guard(tap: string, ip: string): Promise<void> {
    const t = assertTapName(tap);
    const addr = parseCidr(`${ip.split('/')[0]}/32`).address;
    await this.serial(t, async () => {
      await this.retryOnMissing(() => {
        const was = this.state.get(t);
        const cmds: object[] = [this.element('add', GUARDED, t)];
        if (was?.ip && was.ip !== addr) cmds.push(this.element('delete', ALLOWED, { concat: [t, was.ip] }));
        cmds.push(this.element('add', ALLOWED, { concat: [t, addr] }));
        return cmds;
      });
      this.state.set(t, { guarded: true, ip: addr });
    });
  }

  /** Forgets `tap`; a TAP this guard does not know costs no run. */
  async unguard(tap: string): Promise<void> {
    const t = assertTapName(tap);
    await this.serial(t, async () => {
      await this.retryOnMissing(() => {
        const was = this.state.get(t);
        const cmds: object[] = [];
        if (was?.guarded) cmds.push(this.element('delete', GUARDED, t));
        if (was?.ip) cmds.push(this.element('delete', ALLOWED, { concat: [t, was.ip] }));
        return cmds;
      });
      this.state.delete(t);
    });
  }

  /** Runs a batch built from the current state; if nft says something is gone (a flush), re-lists and retries once. */
  private async retryOnMissing(build: () => object[]): Promise<void> {
    const ready = this.setup();
    await ready;
    try {
      await this.nft(build());
    } catch (e) {
      if (!missing(e)) throw e;
      if (this.ready === ready) this.ready = undefined;
      await this.setup();
      await this.nft(build());
    }
  }

  private setup(): Promise<void> {
    if (!this.ready) {
      const p = this.converge();
      this.ready = p;
      p.catch(() => {
        if (this.ready === p) this.ready = undefined;
      });
    }
    return this.ready;
  }

  private async converge(): Promise<void> {
    const res = await this.runner.run('nft', ['-j', 'list', 'table', FAMILY, this.table]);
    if (res.code !== 0 && !/No such file or directory/.test(res.stderr)) {
      throw new CommandFailed('nft', ['-j', 'list', 'table', FAMILY, this.table], res);
    }
    const items = res.code === 0 ? ((JSON.parse(res.stdout) as Listing).nftables ?? []) : [];
    const state = new Map<string, TapState>();
    const sets = new Set<string>();
    const rules = new Set<Proto>();
    let chain = false;
    const cmds: object[] = [];
    for (const i of items) {
      if (i.set?.name) sets.add(i.set.name);
      if (i.chain?.name === CHAIN) chain = true;
      if (i.set?.name === GUARDED) {
        for (const e of i.set.elem ?? []) if (typeof e === 'string') state.set(e, { guarded: true });
      }
      const r = i.rule;
      if (!r) continue;
      const kind = setRuleKind(r);
      if (kind) rules.add(kind);
      if (r.comment?.startsWith(OLD_COMMENT) && r.handle !== undefined) {
        cmds.push({ delete: { rule: { family: FAMILY, table: this.table, chain: CHAIN, handle: r.handle } } });
        const tap = validTap(r.comment.slice(OLD_COMMENT.length));
        const ip = oldRuleAddress(r);
        if (tap && ip && !state.has(tap)) state.set(tap, { guarded: false, ip });
      }
    }
    for (const i of items) {
      if (i.set?.name !== ALLOWED) continue;
      for (const e of i.set.elem ?? []) {
        const [tap, ip] = (e as { concat?: unknown[] }).concat ?? [];
        if (typeof tap === 'string' && typeof ip === 'string')
          state.set(tap, { guarded: !!state.get(tap)?.guarded, ip });
      }
    }
    const base: object[] = [];
    if (res.code !== 0) base.push({ add: { table: { family: FAMILY, name: this.table } } });
    if (!sets.has(GUARDED)) base.push({ add: { set: this.set(GUARDED, 'ifname') } });
    if (!sets.has(ALLOWED)) base.push({ add: { set: this.set(ALLOWED, ['ifname', 'ipv4_addr']) } });
    if (!chain) {
      const c = { family: FAMILY, table: this.table, name: CHAIN, type: 'filter', hook: 'prerouting', prio: -200 };
      base.push({ add: { chain: c } });
    }
    for (const proto of ['ip', 'arp'] as const) if (!rules.has(proto)) base.push({ add: { rule: this.rule(proto) } });
    // Migrated old rules become elements in the same batch that deletes them: no window with the TAP unguarded.
    for (const [tap, s] of state) {
      if (s.guarded || !s.ip) continue;
      cmds.push(this.element('add', GUARDED, tap), this.element('add', ALLOWED, { concat: [tap, s.ip] }));
      s.guarded = true;
    }
    if (base.length || cmds.length) await this.nft([...base, ...cmds]);
    this.state = state;
  }

  private set(name: string, type: string | string[]): object {
    return { family: FAMILY, table: this.table, name, type };
  }

  private rule(proto: Proto): object {
    const iif = { meta: { key: 'iifname' } };
    return {
      family: FAMILY,
      table: this.table,
      chain: CHAIN,
      expr: [
        { match: { op: '==', left: iif, right: `@${GUARDED}` } },
        {
          match: {
            op: '!=',
            left: { concat: [iif, { payload: { protocol: proto, field: FIELD[proto] } }] },
            right: `@${ALLOWED}`,
          },
        },
        { drop: null },
      ],
    };
  }

  private element(op: 'add' | 'delete', set: string, elem: unknown): object {
    return { [op]: { element: { family: FAMILY, table: this.table, name: set, elem: [elem] } } };
  }

  private async nft(commands: object[]): Promise<void> {
    if (!commands.length) return;
    // One argv element, not stdin: nft opens /dev/stdin, which fails on the socket pipes Node spawns with.
    await runChecked(this.runner, 'nft', ['-j', JSON.stringify({ nftables: commands })]);
  }

  /** One operation per TAP at a time, so the in-memory address is always the one the kernel holds. */
  private serial(tap: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.locks.get(tap) ?? Promise.resolve()).then(fn);
    const tail = next.catch(() => undefined);
    this.locks.set(tap, tail);
    void tail.then(() => {
      if (this.locks.get(tap) === tail) this.locks.delete(tap);
    });
    return next;
  }
}
