import type { Database } from './client.ts';

/** The channel the tables' triggers notify on (migration 0009). */
export const CHANGES_CHANNEL = 'nqvm_changes';

/** One statement's change, as its trigger announced it. */
export type Change =
  | { table: 'vms'; ids: string[] | '*' }
  | { table: 'events'; first: bigint; last: bigint }
  | { table: string };

export function parseChange(payload: string): Change | null {
  const colon = payload.indexOf(':');
  const table = colon < 0 ? payload : payload.slice(0, colon);
  const rest = colon < 0 ? '' : payload.slice(colon + 1);
  if (!/^[a-z_]{1,63}$/.test(table)) return null;
  if (table === 'vms') return { table, ids: rest === '*' || rest === '' ? '*' : rest.split(',') };
  if (table === 'events') {
    const m = /^([0-9]{1,19})-([0-9]{1,19})$/.exec(rest);
    return m ? { table, first: BigInt(m[1]!), last: BigInt(m[2]!) } : null;
  }
  return { table };
}

export interface ChangeFeedOptions {
  retryMs?: number;
  onError?: (err: Error) => void;
}

/**
 * What every manager writes, seen by every manager: one LISTEN on the changes channel (a dedicated connection on
 * PostgreSQL, in-process on PGlite), listening again after a loss. Subscribers hear each change; `onLive` hears
 * the feed go up (true) and down (false), so what relies on it (caches) stops trusting itself while it is down and
 * what can catch up (the event stream) does when it is back.
 */
export class ChangeFeed {
  private readonly subscribers = new Set<(c: Change) => void>();
  private readonly liveListeners = new Set<(live: boolean) => void>();
  private stopListening: (() => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private up = false;

  constructor(
    private readonly database: Pick<Database, 'listen'>,
    private readonly opts: ChangeFeedOptions = {},
  ) {}

  get live(): boolean {
    return this.up;
  }

  /** Starts listening; resolves once the first attempt is done (up, or scheduled to retry). */
  async start(): Promise<void> {
    await this.connect();
  }

  subscribe(fn: (c: Change) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  onLive(fn: (live: boolean) => void): () => void {
    this.liveListeners.add(fn);
    return () => this.liveListeners.delete(fn);
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.setLive(false);
    await this.stopListening?.();
  }

  private async connect(): Promise<void> {
    try {
      const stop = await this.database.listen(CHANGES_CHANNEL, (payload) => this.deliver(payload), this.lost);
      if (this.closed) return void (await stop());
      this.stopListening = stop;
      this.setLive(true);
    } catch (err) {
      this.lost(err as Error);
    }
  }

  private readonly lost = (err: Error) => {
    this.setLive(false);
    this.stopListening = undefined;
    this.opts.onError?.(err);
    if (this.closed) return;
    this.timer = setTimeout(() => void this.connect(), this.opts.retryMs ?? 1000);
    this.timer.unref();
  };

  private deliver(payload: string): void {
    const change = parseChange(payload);
    if (!change) return;
    for (const fn of this.subscribers) fn(change);
  }

  private setLive(live: boolean): void {
    if (live === this.up) return;
    this.up = live;
    for (const fn of this.liveListeners) fn(live);
  }
}
