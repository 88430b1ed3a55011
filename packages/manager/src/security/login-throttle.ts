/**
 * Decides, before any password is hashed, whether a login attempt may be evaluated.
 *
 * - Per source: at most `perSource` attempts in flight or failed within the window; more are refused at once,
 *   so 200 parallel guesses cost at most `perSource` hashes.
 * - Per user: once `perUser` failures pile up within the window the account is under attack: a source that
 *   has already failed against it waits out a doubling backoff, but a source with no failure against it (the
 *   owner at their usual machine) is still evaluated. Other sources can slow guessing down, never lock the
 *   right password out.
 */
export interface ThrottleOptions {
  perSource: number;
  perUser: number;
  windowMs: number;
  now?: () => number;
}

export type Admission = { ok: true; done: (success: boolean) => void } | { ok: false; retryAfterS: number };

interface Pair {
  failures: number;
  last: number;
  until: number;
}

export class LoginThrottle {
  private readonly sources = new Map<string, number[]>();
  private readonly users = new Map<string, number[]>();
  private readonly pairs = new Map<string, Pair>();
  private readonly now: () => number;

  constructor(private readonly opts: ThrottleOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Synchronous: the slot is taken before the caller awaits anything. */
  admit(source: string, user: string): Admission {
    const now = this.now();
    const bySource = this.recent(this.sources, source, now);
    if (bySource.length >= this.opts.perSource)
      return { ok: false, retryAfterS: this.secondsUntil(bySource[0]! + this.opts.windowMs, now) };
    const pairKey = `${source}\u0000${user}`;
    const pair = this.pairs.get(pairKey);
    if (pair && pair.until > now) return { ok: false, retryAfterS: this.secondsUntil(pair.until, now) };

    const stamp = now;
    bySource.push(stamp);
    this.sources.set(source, bySource);
    this.prune(now);
    let settled = false;
    return {
      ok: true,
      done: (success) => {
        if (settled) return;
        settled = true;
        if (success) {
          // A success frees its own slot; earlier failures of this source still count.
          const list = this.sources.get(source);
          const i = list?.indexOf(stamp) ?? -1;
          if (list && i >= 0) list.splice(i, 1);
          this.pairs.delete(pairKey);
          return;
        }
        const t = this.now();
        const list = this.recent(this.users, user, t);
        list.push(t);
        this.users.set(user, list);
        const before = this.pairs.get(pairKey);
        const p = before && t - before.last < this.opts.windowMs ? before : { failures: 0, last: t, until: 0 };
        p.failures++;
        p.last = t;
        this.pairs.set(pairKey, p);
        // The account is under attack: this source waits before its next try; sources that never failed do not.
        if (list.length >= this.opts.perUser) this.backOff(pairKey, p, t);
      },
    };
  }

  /** 2 s, 4 s, 8 s … up to the window, for a source that keeps failing against an account under attack. */
  private backOff(key: string, pair: Pair, now: number): void {
    pair.until = now + Math.min(this.opts.windowMs, 1000 * 2 ** Math.min(pair.failures, 20));
    this.pairs.set(key, pair);
  }

  private secondsUntil(t: number, now: number): number {
    return Math.max(1, Math.ceil((t - now) / 1000));
  }

  private recent(map: Map<string, number[]>, key: string, now: number): number[] {
    const cutoff = now - this.opts.windowMs;
    return (map.get(key) ?? []).filter((t) => t > cutoff);
  }

  private prune(now: number): void {
    if (this.sources.size + this.users.size + this.pairs.size < 10_000) return;
    for (const map of [this.sources, this.users])
      for (const key of map.keys()) if (this.recent(map, key, now).length === 0) map.delete(key);
    for (const [key, p] of this.pairs) if (now - Math.max(p.last, p.until) > this.opts.windowMs) this.pairs.delete(key);
  }
}
