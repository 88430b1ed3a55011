import type { ChangeFeed } from './changes.ts';

/**
 * Which tables each list's pages are read from, by route operation id: a change to any of them drops that list's
 * cached pages. A list joins by naming its tables here, each carrying the nqvm_notify_change trigger (migration
 * 0009). Not here: the hosts list (its health depends on the clock, not only on rows) and the per-VM NIC and drive
 * lists (a handful of rows each).
 */
export const LIST_TABLES: Record<string, readonly string[]> = {
  listVms: ['vms', 'vm_nics', 'networks'],
  listEvents: ['events'],
  listImages: ['images'],
  listTemplates: ['templates', 'template_images'],
  listTokens: ['api_tokens'],
  listVmSnapshots: ['snapshots'],
};

/** Pages of one list, kept while the change feed proves them current. */
export class PageCache {
  private gen = 0;
  private readonly entries = new Map<string, string>();

  constructor(
    private readonly isLive: () => boolean,
    private readonly maxEntries = 1024,
  ) {}

  /** Take before reading the database; pass to `put` with the result. */
  get generation(): number {
    return this.gen;
  }

  get(key: string): string | undefined {
    return this.isLive() ? this.entries.get(key) : undefined;
  }

  /** Keeps a page unless a change came between reading it and now (the generation moved). */
  put(key: string, generation: number, body: string): void {
    if (!this.isLive() || generation !== this.gen) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, body);
  }

  invalidate(): void {
    this.gen++;
    this.entries.clear();
  }
}

/**
 * The list pages of every list route, served from memory between changes. Any change to a list's tables, by any
 * manager or by hand, drops its pages (NOTIFY through the change feed); a write request answered by this manager
 * drops every list before its answer leaves, so a client reads its own writes; nothing is served while the feed is
 * down, since changes could be missed.
 */
export class ListCaches {
  private readonly caches = new Map<string, PageCache>();

  constructor(private readonly feed: ChangeFeed) {
    feed.subscribe((c) => {
      for (const [op, tables] of Object.entries(LIST_TABLES))
        if (tables.includes(c.table)) this.caches.get(op)?.invalidate();
    });
    feed.onLive(() => this.invalidateAll());
  }

  /** The cache of a list route, or undefined for a route that is not a list. */
  forRoute(operationId: string): PageCache | undefined {
    if (!LIST_TABLES[operationId]) return undefined;
    let cache = this.caches.get(operationId);
    if (!cache) {
      cache = new PageCache(() => this.feed.live);
      this.caches.set(operationId, cache);
    }
    return cache;
  }

  invalidateAll(): void {
    for (const c of this.caches.values()) c.invalidate();
  }
}
