import { describe, expect, it } from 'vitest';
import type { Principal } from '../../http/principal.ts';
import type { Count, CounterStore } from './ratelimit.repository.ts';
import { RateLimiter } from './ratelimit.service.ts';

/** The shared counters in memory, one window, counting the trips made to it. */
class FakeCounters implements CounterStore {
  readonly hits = new Map<string, number>();
  trips = 0;
  async hit(keys: { key: string; amount: number }[]): Promise<Count[]> {
    this.trips++;
    return keys.map(({ key, amount }) => {
      const n = (this.hits.get(key) ?? 0) + amount;
      this.hits.set(key, n);
      return { key, hits: n, resetS: 30 };
    });
  }
  async prune(): Promise<void> {}
}

const token: Principal = {
  kind: 'user',
  userId: 'u1',
  username: 'ann',
  role: 'user',
  via: 'token',
  credentialId: 't1',
  projects: {},
};
const limits = { windowS: 60, perToken: 1000, perUser: 0, perAddress: 5 };

describe('RateLimiter', () => {
  it('never lets two managers together pass the limit, and goes to the database once per 1 % of it', async () => {
    const store = new FakeCounters();
    const managers = [new RateLimiter(store, limits), new RateLimiter(store, limits)];
    const verdicts = await Promise.all(Array.from({ length: 1200 }, (_, i) => managers[i % 2]!.check(token, '::1')));
    const passed = verdicts.filter((v) => v && !v.exceeded).length;
    expect(passed).toBeLessThanOrEqual(1000);
    expect(passed).toBeGreaterThanOrEqual(1000 - 2 * 10);
    expect(store.trips).toBeLessThanOrEqual(1000 / 10 + 4);
    const refused = verdicts.find((v) => v?.exceeded);
    expect(refused).toMatchObject({ limit: 1000, remaining: 0, resetS: 30, scope: 'token' });
  });

  it('refuses a caller over its limit from memory, without another trip, until the window ends', async () => {
    let now = 1_000_000;
    const store = new FakeCounters();
    const limiter = new RateLimiter(store, limits, { now: () => now });
    for (let i = 0; i < 5; i++) expect((await limiter.check({ kind: 'anonymous' }, '192.0.2.1'))?.exceeded).toBe(false);
    const trips = store.trips;
    for (let i = 0; i < 50; i++) expect((await limiter.check({ kind: 'anonymous' }, '192.0.2.1'))?.exceeded).toBe(true);
    expect(store.trips).toBe(trips);
    expect((await limiter.check({ kind: 'anonymous' }, '192.0.2.2'))?.exceeded).toBe(false);
    now += 30_000;
    store.hits.clear();
    expect((await limiter.check({ kind: 'anonymous' }, '192.0.2.1'))?.exceeded).toBe(false);
  });

  it('counts neither hosts nor guests, and lets requests through uncounted when the counters fail', async () => {
    const limiter = new RateLimiter(new FakeCounters(), limits);
    expect(await limiter.check({ kind: 'host', hostId: 'h' }, '::1')).toBeUndefined();
    expect(await limiter.check({ kind: 'guest', vmId: 'v' }, '::1')).toBeUndefined();
    const errors: unknown[] = [];
    const broken: CounterStore = {
      hit: () => Promise.reject(new Error('database down')),
      prune: async () => {},
    };
    const failing = new RateLimiter(broken, limits, { onError: (e) => errors.push(e) });
    expect(await failing.check(token, '::1')).toBeUndefined();
    expect(errors).toHaveLength(1);
  });
});

describe('RateLimiter with per-project overrides', () => {
  it("counts a token against its project's override and a user against theirs, others against the defaults", async () => {
    let refreshed = 0;
    const overrides = {
      fresh: async () => {
        refreshed++;
      },
      forToken: (id: string) => (id === 't1' ? 3 : undefined),
      forUser: (id: string) => (id === 'u2' ? 2 : undefined),
    };
    const limiter = new RateLimiter(new FakeCounters(), { ...limits, perUser: 100 }, { overrides });
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limiter.check(token, '::1'));
    expect(verdicts.map((v) => v?.exceeded)).toEqual([false, false, false, true]);
    expect(verdicts[3]).toMatchObject({ limit: 3, scope: 'token' });
    const other: Principal = { ...token, userId: 'u2', via: 'session', credentialId: 's2' };
    const theirs = [];
    for (let i = 0; i < 3; i++) theirs.push(await limiter.check(other, '::1'));
    expect(theirs.map((v) => v?.exceeded)).toEqual([false, false, true]);
    expect(theirs[2]).toMatchObject({ limit: 2, scope: 'user' });
    const plain: Principal = { ...token, userId: 'u3', credentialId: 't3' };
    expect(await limiter.check(plain, '::1')).toMatchObject({ limit: 100, exceeded: false });
    expect(refreshed).toBe(8);
  });
});
