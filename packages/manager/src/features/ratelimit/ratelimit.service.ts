import type { Principal } from '../../http/principal.ts';
import type { CounterStore } from './ratelimit.repository.ts';

/** Requests allowed per window; 0 means no limit of that kind. */
export interface RateLimits {
  windowS: number;
  /** Per API token. */
  perToken: number;
  /** Per user, over all their sessions and tokens. */
  perUser: number;
  /** Per source address, for routes that need no credentials. */
  perAddress: number;
}

/** Per-project overrides of the per-token and per-user limits (set with the project's quota), read from a cache. */
export interface LimitOverrides {
  /** Brings the cache up to date when it is stale (one read every few seconds at most). */
  fresh(): Promise<void>;
  forToken(tokenId: string): number | undefined;
  forUser(userId: string): number | undefined;
}

/** The limit a request met, for the `RateLimit-*` headers; `exceeded` when it must be refused. */
export interface Verdict {
  limit: number;
  remaining: number;
  resetS: number;
  windowS: number;
  exceeded: boolean;
  /** What was counted: `token`, `user` or `address`. */
  scope: string;
}

interface Counted {
  key: string;
  scope: string;
  limit: number;
}

/** This manager's share of a key's window: slots it took from the shared count and has not used yet. */
interface Allowance {
  windowEndsAt: number;
  left: number;
  /** The shared count as of this manager's last reservation, capped at the limit. */
  taken: number;
  /** The shared count has reached the limit: nothing more to take this window. */
  exhausted: boolean;
}

/** Slots reserved per trip to the database: 1 % of the limit, so managers leave at most that much unused each. */
export const reservationOf = (limit: number) => Math.max(1, Math.floor(limit / 100));

/**
 * Counts API requests per token, per user and per source address against counters in the database, so a limit holds
 * across every manager. A manager reserves slots in small batches (1 % of the limit) and spends them locally: the
 * shared count never passes the limit, a busy caller costs one database write per batch, and a caller over its limit
 * is refused from memory until the window ends. The tightest limit answers; hosts and guests are not counted.
 */
export class RateLimiter {
  private readonly local = new Map<string, Allowance>();
  private readonly inflight = new Map<string, Promise<void>>();
  private lastPrune = 0;
  private readonly now: () => number;

  constructor(
    private readonly store: CounterStore,
    private readonly limits: RateLimits,
    private readonly opts: { now?: () => number; onError?: (err: unknown) => void; overrides?: LimitOverrides } = {},
  ) {
    this.now = opts.now ?? Date.now;
  }

  /** What a caller is counted as, with its limits. */
  countedAs(p: Principal | undefined, address: string): Counted[] {
    const out: Counted[] = [];
    if (!p) return out;
    if (p.kind === 'user') {
      const o = this.opts.overrides;
      const perToken = (p.via === 'token' ? o?.forToken(p.credentialId) : undefined) ?? this.limits.perToken;
      const perUser = o?.forUser(p.userId) ?? this.limits.perUser;
      if (p.via === 'token' && perToken > 0)
        out.push({ key: `token:${p.credentialId}`, scope: 'token', limit: perToken });
      if (perUser > 0) out.push({ key: `user:${p.userId}`, scope: 'user', limit: perUser });
    } else if (p.kind === 'anonymous' && this.limits.perAddress > 0)
      out.push({ key: `addr:${address}`, scope: 'address', limit: this.limits.perAddress });
    return out;
  }

  /** Counts one request; undefined when nothing limits this caller (or the counters cannot be reached). */
  async check(p: Principal | undefined, address: string): Promise<Verdict | undefined> {
    if (p?.kind === 'user') await this.opts.overrides?.fresh().catch((err: unknown) => this.opts.onError?.(err));
    const counted = this.countedAs(p, address);
    if (counted.length === 0) return undefined;
    // Another request of the same caller may spend what a refill brought before this one resumes: refill again. Each
    // trip takes more of the shared count, so this ends once a slot is held or the count is exhausted.
    for (;;) {
      const now = this.now();
      const short = counted.filter((c) => {
        const a = this.current(c.key, now);
        return !a || (a.left === 0 && !a.exhausted);
      });
      if (short.length === 0) break;
      try {
        await this.refill(short);
      } catch (err) {
        // Counters out of reach must not take the API down with them: the request goes on uncounted.
        this.opts.onError?.(err);
        return undefined;
      }
    }
    const now = this.now();
    const held = counted.map((c) => ({ c, a: this.current(c.key, now) }));
    if (held.some((h) => !h.a)) return undefined;
    const over = held.find((h) => h.a!.left === 0);
    if (!over) for (const h of held) h.a!.left--;
    let tightest: Verdict | undefined;
    for (const { c, a } of over ? [over] : held) {
      const v: Verdict = {
        limit: c.limit,
        remaining: over ? 0 : c.limit - a!.taken + a!.left,
        resetS: Math.max(1, Math.ceil((a!.windowEndsAt - now) / 1000)),
        windowS: this.limits.windowS,
        exceeded: Boolean(over),
        scope: c.scope,
      };
      if (!tightest || v.remaining < tightest.remaining) tightest = v;
    }
    return tightest;
  }

  private current(key: string, now: number): Allowance | undefined {
    const a = this.local.get(key);
    if (a && a.windowEndsAt > now) return a;
    if (a) this.local.delete(key);
    return undefined;
  }

  /** Reserves a batch for each key, one statement for all of them; a key already being refilled is waited for. */
  private async refill(short: Counted[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const fresh = short.filter((c) => {
      const pending = this.inflight.get(c.key);
      if (pending) waits.push(pending);
      return !pending;
    });
    if (fresh.length) {
      const trip = this.reserve(fresh).finally(() => {
        for (const c of fresh) this.inflight.delete(c.key);
      });
      for (const c of fresh) this.inflight.set(c.key, trip);
      waits.push(trip);
    }
    await Promise.all(waits);
  }

  private async reserve(fresh: Counted[]): Promise<void> {
    const { windowS } = this.limits;
    const asked = fresh.map((c) => ({ key: c.key, amount: reservationOf(c.limit) }));
    const counts = await this.store.hit(asked, windowS);
    const now = this.now();
    for (const c of fresh) {
      const n = counts.find((x) => x.key === c.key);
      if (!n) continue;
      const amount = reservationOf(c.limit);
      const granted = Math.max(0, Math.min(amount, c.limit - (n.hits - amount)));
      const prev = this.current(c.key, now);
      this.local.set(c.key, {
        windowEndsAt: now + n.resetS * 1000,
        left: (prev?.left ?? 0) + granted,
        taken: Math.min(c.limit, Math.max(n.hits, prev?.taken ?? 0)),
        exhausted: n.hits >= c.limit,
      });
    }
    this.prune(now);
  }

  /** Ended windows are dropped about once a window, here and (by whichever manager comes first) in the database. */
  private prune(now: number): void {
    const { windowS } = this.limits;
    if (now - this.lastPrune < windowS * 1000) return;
    this.lastPrune = now;
    for (const [key, a] of this.local) if (a.windowEndsAt <= now) this.local.delete(key);
    this.store.prune(windowS).catch((err) => this.opts.onError?.(err));
  }
}
