/** A token bucket per key: `burst` calls at once, then one every `refillMs`. Idle keys are forgotten. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 4096,
  ) {}

  /** Takes one token for `key`; the answer is 0 when allowed, else the milliseconds until the next token. */
  take(key: string): number {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) / this.refillMs);
    b.at = now;
    this.buckets.delete(key);
    if (this.buckets.size >= this.maxKeys) this.sweep(now);
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - b.tokens) * this.refillMs);
  }

  /** Drops keys whose bucket is full again, then the oldest if still too many (insertion order is use order). */
  private sweep(now: number): void {
    for (const [k, b] of this.buckets)
      if (b.tokens + (now - b.at) / this.refillMs >= this.burst) this.buckets.delete(k);
    for (const k of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(k);
    }
  }
}
