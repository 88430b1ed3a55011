export interface LeasePollerOptions<T> {
  /**
   * Claims up to `free` items that are due (by lease, so that several managers share the work) and returns them;
   * a periodic job with nothing to claim does its work here and returns none.
   */
  claim(free: number): Promise<T[]>;
  /** Works on one claimed item; its errors are logged with `what`. */
  run(item: T): Promise<void>;
  /** The key of a claimed item (`runs(key)` answers whether it is in progress here). */
  key(item: T): string;
  /** Items worked on side by side at most. */
  concurrency: number;
  /** Logged when a claim pass fails, and when a run fails. */
  messages: { claim: string; run: string };
  log: { error(obj: object, msg: string): void };
  /** Whether a pass waits one turn of the event loop first, so that kicks in the same turn make one claim. */
  deferPass?: boolean;
  /** Whether kicks claim before `start()` (a worker whose timer starts later still runs what is queued). */
  activeBeforeStart?: boolean;
}

/**
 * The loop shared by the lease-claimed background work every manager runs (operations, webhook deliveries, alert
 * evaluation): a timer and kicks make claim passes, one at a time (kicks during a pass make one more), claimed items
 * run side by side up to a limit, each ending kicks again (more may be due), and `stop()` ends claiming and waits
 * for what runs.
 */
export class LeasePoller<T> {
  private readonly inflight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private kicked: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;

  constructor(private readonly o: LeasePollerOptions<T>) {}

  /** Kicks every `intervalMs` (and now, unless `immediate` is false). */
  start(intervalMs: number, immediate = true): void {
    this.started = true;
    this.stopped = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
    if (immediate) this.kick();
  }

  /** Stops claiming and waits for the pass and the runs in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.kicked;
    await this.idle();
  }

  /** Waits until this process runs nothing. */
  async idle(): Promise<void> {
    while (this.inflight.size || this.kicked) {
      await this.kicked;
      await Promise.allSettled([...this.inflight.values()]);
    }
  }

  /** Whether the item with `key` runs here now. */
  runs(key: string): boolean {
    return this.inflight.has(key);
  }

  /** Claims soon; kicks asked for during a pass make one more pass after it. */
  kick(): void {
    if (this.stopped || !(this.started || this.o.activeBeforeStart)) return;
    if (this.kicked) {
      this.again = true;
      return;
    }
    this.kicked = (async () => {
      if (this.o.deferPass) await new Promise<void>((resolve) => setImmediate(resolve));
      do {
        this.again = false;
        await this.claimAndRun().catch((err) => this.o.log.error({ err }, this.o.messages.claim));
      } while (this.again && !this.stopped);
      this.kicked = undefined;
    })();
  }

  /** One claim pass now (tests drive it); resolves with the runs it started. Claims nothing once stopped. */
  async claimAndRun(): Promise<Promise<void>[]> {
    if (this.stopped) return [];
    const free = this.o.concurrency - this.inflight.size;
    if (free <= 0) return [];
    const claimed = await this.o.claim(free);
    return claimed.map((item) => {
      const key = this.o.key(item);
      const run: Promise<void> = this.o
        .run(item)
        .catch((err) => this.o.log.error({ err, key }, this.o.messages.run))
        .finally(() => {
          this.inflight.delete(key);
          this.kick();
        });
      this.inflight.set(key, run);
      return run;
    });
  }
}
