import { describe, expect, it } from 'vitest';
import { LeasePoller } from './lease-poller.ts';

const quiet = { error: () => {} };

/** A queue of due items and runs that end when the test says so. */
function harness(opts: { concurrency: number; activeBeforeStart?: boolean }) {
  const due: string[] = [];
  const claims: number[] = [];
  const ends = new Map<string, () => void>();
  const startWaiters = new Map<string, () => void>();
  /** Resolves once `item` runs. */
  const started = (item: string) =>
    ends.has(item) ? Promise.resolve() : new Promise<void>((resolve) => startWaiters.set(item, resolve));
  const poller = new LeasePoller<string>({
    claim: async (free) => {
      claims.push(free);
      return due.splice(0, free);
    },
    run: (item) =>
      new Promise<void>((resolve) => {
        ends.set(item, resolve);
        startWaiters.get(item)?.();
      }),
    key: (item) => item,
    concurrency: opts.concurrency,
    messages: { claim: 'claim failed', run: 'run failed' },
    log: quiet,
    activeBeforeStart: opts.activeBeforeStart,
  });
  return { due, claims, ends, started, poller };
}

describe('LeasePoller', () => {
  it('claims no more than its free slots and claims again as runs end', async () => {
    const h = harness({ concurrency: 2 });
    h.due.push('a', 'b', 'c');
    const runs = await h.poller.claimAndRun();
    expect(runs).toHaveLength(2);
    expect(h.poller.runs('a') && h.poller.runs('b')).toBe(true);
    expect(await h.poller.claimAndRun()).toHaveLength(0); // no free slot: nothing claimed
    h.poller.start(60_000, false);
    h.ends.get('a')?.();
    // The ended run kicks a pass, which claims the one left.
    await h.started('c');
    expect(h.poller.runs('a')).toBe(false);
    expect(h.claims).toEqual([2, 1]); // the full pass did not even ask
    h.ends.get('b')?.();
    h.ends.get('c')?.();
    await h.poller.stop();
    expect(h.due).toHaveLength(0);
    expect(h.poller.runs('c')).toBe(false);
  });

  it('ignores kicks before start unless told otherwise, and claims nothing after stop', async () => {
    const idle = harness({ concurrency: 4 });
    idle.due.push('a');
    idle.poller.kick();
    await idle.poller.idle();
    expect(idle.claims).toHaveLength(0);

    const eager = harness({ concurrency: 4, activeBeforeStart: true });
    eager.due.push('a');
    eager.poller.kick();
    await eager.started('a');
    expect(eager.poller.runs('a')).toBe(true);
    eager.ends.get('a')?.();
    await eager.poller.stop();
    eager.due.push('b');
    expect(await eager.poller.claimAndRun()).toHaveLength(0);
    eager.poller.kick();
    expect(eager.due).toEqual(['b']);
  });

  it('folds kicks during a pass into one more pass, and logs a failed pass without stopping', async () => {
    const errors: string[] = [];
    let passes = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const poller = new LeasePoller<string>({
      claim: async () => {
        passes++;
        if (passes === 1) {
          await gate;
          throw new Error('database away');
        }
        return [];
      },
      run: async () => {},
      key: (x) => x,
      concurrency: 1,
      messages: { claim: 'claim failed', run: 'run failed' },
      log: { error: (_o, msg) => errors.push(msg) },
    });
    poller.start(60_000);
    poller.kick();
    poller.kick();
    poller.kick();
    release();
    await poller.idle();
    expect(passes).toBe(2);
    expect(errors).toEqual(['claim failed']);
    await poller.stop();
  });
});
