import type { RateLimiter, TokenBucket } from '../vmm/types.ts';
import type { NetCommands } from './commands.ts';
import { parseJsonArray } from './commands.ts';
import { InvalidNetInput, UnsupportedLimit } from './errors.ts';
import { assertMtu, assertTapName, ifbNameForTap } from './names.ts';

/**
 * NIC rate limits with Linux tc, the QEMU stand-in for Firecracker's per-NIC token buckets.
 *
 * Guest rx (what the guest receives) leaves the host through the TAP's egress: a root `tbf` on the TAP.
 * Guest tx (what the guest sends) enters the host on the TAP's ingress. Ingress has no queue of its own,
 * so it is redirected (u32 match-all + mirred) to an IFB device named after the TAP (nqt… → nqi…) whose
 * root `tbf` shapes it. Chosen over `matchall … action police` because (1) it needs only cls_u32,
 * act_mirred, ifb and sch_tbf, which kernels built without act_police/cls_matchall (this CI host) still
 * have, and (2) it queues instead of dropping, closer to Firecracker, which stalls the guest's queue
 * rather than dropping frames.
 */

export const TBF_LATENCY_MS = 50;
/**
 * Guest tx queues about this many bytes instead of dropping, the nearest tc gets to Firecracker's backpressure:
 * a guest's TCP sends 64 KiB GSO frames, and a 50 ms queue at 1 MiB/s holds fewer than three of them.
 */
export const TX_QUEUE_BYTES = 8 * 1024 * 1024;
const MAX_LATENCY_MS = 60_000;
const ETH_OVERHEAD = 18;
/** The u32 filter's fixed handle, so `tc filter replace` finds and swaps the same filter every time. */
const REDIRECT_HANDLE = '800::800';

export type Direction = 'rx' | 'tx';

/** tc's view of one token bucket. */
export interface TbfParams {
  rateBitsPerSec: number;
  burstBytes: number;
  latencyMs: number;
}

export interface NicLimits {
  rx?: RateLimiter | null;
  tx?: RateLimiter | null;
}

export interface AppliedNicLimits {
  rx: { rateBytesPerSec: number; burstBytes: number } | null;
  tx: { rateBytesPerSec: number; burstBytes: number } | null;
}

function checkBucket(direction: Direction, b: TokenBucket): void {
  for (const [field, v] of [
    ['size', b.size],
    ['refill_time', b.refill_time],
    ['one_time_burst', b.one_time_burst ?? 0],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new InvalidNetInput('rate_limiter', v, `${direction} ${field} must be a non-negative integer`);
    }
  }
}

function active(b: TokenBucket | undefined): b is TokenBucket {
  return b !== undefined && b.size > 0 && b.refill_time > 0;
}

/**
 * Maps a Firecracker rate limiter to tbf parameters, or null for "no limit" (absent, size 0 or
 * refill_time 0). Rate = size / refill_time; the bucket is size + one_time_burst. tbf refills its
 * whole bucket, so the one-time burst recurs after idle periods, unlike Firecracker's. The burst is
 * raised to one full frame, below which tbf could never send a packet.
 */
export function tbfParams(limiter: RateLimiter | null | undefined, direction: Direction, mtu = 1500): TbfParams | null {
  if (!limiter) return null;
  assertMtu(mtu);
  if (limiter.ops) {
    checkBucket(direction, limiter.ops);
    if (active(limiter.ops)) {
      throw new UnsupportedLimit(
        direction,
        'ops',
        'packet-rate NIC limits need tc police pkts_rate (act_police); nqvm shapes bytes with tbf only, ' +
          'so an ops bucket cannot be enforced by the QEMU driver',
      );
    }
  }
  const bw = limiter.bandwidth;
  if (!bw) return null;
  checkBucket(direction, bw);
  if (!active(bw)) return null;
  const rateBitsPerSec = Math.max(1, Math.round((bw.size * 8000) / bw.refill_time));
  const txLatency = Math.ceil((TX_QUEUE_BYTES * 8000) / rateBitsPerSec);
  return {
    rateBitsPerSec,
    burstBytes: Math.max(bw.size + (bw.one_time_burst ?? 0), mtu + ETH_OVERHEAD),
    latencyMs: direction === 'tx' ? Math.min(MAX_LATENCY_MS, Math.max(TBF_LATENCY_MS, txLatency)) : TBF_LATENCY_MS,
  };
}

/** `tc qdisc replace dev DEV root tbf …` arguments (without any namespace flag). */
export function tbfArgs(dev: string, p: TbfParams): string[] {
  return [
    'qdisc',
    'replace',
    'dev',
    dev,
    'root',
    'tbf',
    'rate',
    `${p.rateBitsPerSec}bit`,
    'burst',
    String(p.burstBytes),
    'latency',
    `${p.latencyMs}ms`,
  ];
}

interface TcQdisc {
  kind?: string;
  handle?: string;
  root?: boolean;
  options?: { rate?: number; burst?: number };
}

async function qdiscs(net: NetCommands, dev: string): Promise<TcQdisc[]> {
  return parseJsonArray<TcQdisc>(await net.tc(['-j', 'qdisc', 'show', 'dev', dev]));
}

async function rootTbf(net: NetCommands, dev: string): Promise<TcQdisc | null> {
  return (await qdiscs(net, dev)).find((q) => q.root && q.kind === 'tbf') ?? null;
}

/**
 * Makes the TAP's limits exactly `limits` (a direction left out has no limit). Both directions are
 * validated before anything runs, so a refused limiter changes nothing. Works on any device name that
 * passes the TAP pattern (tests use a veth standing in for a TAP).
 */
export async function applyNicLimits(net: NetCommands, tap: string, limits: NicLimits): Promise<void> {
  assertTapName(tap);
  tbfParams(limits.rx, 'rx');
  tbfParams(limits.tx, 'tx');
  const link = await net.link(tap);
  if (!link) throw new Error(`device ${tap} does not exist`);
  const mtu = link.mtu ?? 1500;
  const rx = tbfParams(limits.rx, 'rx', mtu);
  const tx = tbfParams(limits.tx, 'tx', mtu);

  if (rx) await net.tc(tbfArgs(tap, rx));
  else if (await rootTbf(net, tap)) await net.tc(['qdisc', 'del', 'dev', tap, 'root']);

  if (tx) await shapeIngress(net, tap, mtu, tx);
  else await clearIngress(net, tap);
}

export async function clearNicLimits(net: NetCommands, tap: string): Promise<void> {
  assertTapName(tap);
  if (await net.link(tap)) {
    if (await rootTbf(net, tap)) await net.tc(['qdisc', 'del', 'dev', tap, 'root']);
  }
  await clearIngress(net, tap);
}

/** What the kernel is enforcing now, read back from tc (rates in bytes per second). */
export async function readNicLimits(net: NetCommands, tap: string): Promise<AppliedNicLimits> {
  assertTapName(tap);
  const ifb = ifbNameForTap(tap);
  const toLimit = (q: TcQdisc | null) =>
    q?.options?.rate !== undefined ? { rateBytesPerSec: q.options.rate, burstBytes: q.options.burst ?? 0 } : null;
  const rx = toLimit(await rootTbf(net, tap));
  const redirected = (await qdiscs(net, tap)).some((q) => q.kind === 'ingress') && (await net.link(ifb)) !== null;
  const tx = redirected ? toLimit(await rootTbf(net, ifb)) : null;
  return { rx, tx };
}

async function shapeIngress(net: NetCommands, tap: string, mtu: number, p: TbfParams): Promise<void> {
  const ifb = ifbNameForTap(tap);
  const existing = await net.link(ifb);
  if (existing && existing.linkinfo?.info_kind !== 'ifb') throw new Error(`${ifb} exists and is not an ifb device`);
  if (!existing) await net.ipTolerating(['link', 'add', 'name', ifb, 'type', 'ifb'], /File exists/i);
  await net.ip(['link', 'set', 'dev', ifb, 'mtu', String(mtu), 'up']);
  await net.tc(tbfArgs(ifb, p));
  await net.tc(['qdisc', 'replace', 'dev', tap, 'handle', 'ffff:', 'ingress']);
  await net.tc([
    'filter',
    'replace',
    'dev',
    tap,
    'parent',
    'ffff:',
    'protocol',
    'all',
    'pref',
    '1',
    'handle',
    REDIRECT_HANDLE,
    'u32',
    'match',
    'u32',
    '0',
    '0',
    'action',
    'mirred',
    'egress',
    'redirect',
    'dev',
    ifb,
  ]);
}

async function clearIngress(net: NetCommands, tap: string): Promise<void> {
  if ((await net.link(tap)) && (await qdiscs(net, tap)).some((q) => q.kind === 'ingress')) {
    await net.tc(['qdisc', 'del', 'dev', tap, 'ingress']);
  }
  const ifb = ifbNameForTap(tap);
  const link = await net.link(ifb);
  if (link?.linkinfo?.info_kind === 'ifb') await net.ip(['link', 'del', 'dev', ifb]);
}
