import type { Database } from './client.ts';

/**
 * Read results (e.g. list pages) kept while a change feed proves them current. Every change — local
 * write or NOTIFY from any manager — drops everything; a result computed across a change is never stored
 * (generation check), and nothing is served while the feed is down.
 */
export class ChangeCache<T> {
  private gen = 0;
  private live = false;
  private readonly entries = new Map<string, T>();

  constructor(private readonly maxEntries = 512) {}

  /** Take before reading the database; pass to `put` with the result. */
  get generation(): number {
    return this.gen;
  }

  /** Whether results are being kept (the change feed is up). */
  get isLive(): boolean {
    return this.live;
  }

  get(key: string): T | undefined {
    return this.live ? this.entries.get(key) : undefined;
  }

  put(key: string, generation: number, value: T): void {
    if (!this.live || generation !== this.gen) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, value);
  }

  invalidate(): void {
    this.gen++;
    this.entries.clear();
  }

  setLive(live: boolean): void {
    this.invalidate();
    this.live = live;
  }
}

/** Keeps `cache` live while LISTEN on `channel` works, listening again after a loss. Returns stop. */
export function followChanges(
  database: Pick<Database, 'listen'>,
  channel: string,
  cache: ChangeCache<unknown>,
  opts: { retryMs?: number; onError?: (err: Error) => void } = {},
): () => Promise<void> {
  let stop: (() => Promise<void>) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const connect = async () => {
    try {
      const s = await database.listen(channel, () => cache.invalidate(), lost);
      if (closed) return void (await s());
      stop = s;
      cache.setLive(true);
    } catch (err) {
      lost(err as Error);
    }
  };
  function lost(err: Error) {
    cache.setLive(false);
    stop = undefined;
    opts.onError?.(err);
    if (closed) return;
    timer = setTimeout(connect, opts.retryMs ?? 1000);
    timer.unref();
  }
  void connect();
  return async () => {
    closed = true;
    clearTimeout(timer);
    cache.setLive(false);
    await stop?.();
  };
}
