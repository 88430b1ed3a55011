import type { VmMetricsSample } from '@nqvm/api';
import type { ObservedVm, VmMetricsSampler } from './sampler.ts';

export type MetricsListener = (sample: VmMetricsSample) => void;

interface Feed {
  listeners: Set<MetricsListener>;
  timer: NodeJS.Timeout | undefined;
  busy: boolean;
}

/**
 * Live metrics: one timer per VM somebody watches, one sample per tick shared by every watcher; no timer,
 * QMP or guest polling for VMs nobody watches. A tick still running when the next is due is skipped.
 */
export class MetricsHub {
  private readonly feeds = new Map<string, Feed>();

  constructor(
    private readonly sampler: VmMetricsSampler,
    private readonly resolve: (vmId: string) => ObservedVm | undefined | Promise<ObservedVm | undefined>,
    private readonly intervalMs = 1000,
    private readonly onError: (vmId: string, err: unknown) => void = () => {},
  ) {}

  subscribe(vmId: string, listener: MetricsListener): () => void {
    let feed = this.feeds.get(vmId);
    if (!feed) {
      const created: Feed = { listeners: new Set(), timer: undefined, busy: false };
      created.timer = setInterval(() => void this.tick(vmId, created), this.intervalMs);
      feed = created;
      this.feeds.set(vmId, feed);
      void this.tick(vmId, feed);
    }
    feed.listeners.add(listener);
    const f = feed;
    return () => {
      f.listeners.delete(listener);
      if (f.listeners.size) return;
      clearInterval(f.timer);
      if (this.feeds.get(vmId) === f) this.feeds.delete(vmId);
    };
  }

  /** How many VMs are being sampled now. */
  get active(): number {
    return this.feeds.size;
  }

  /** One sample now, outside any feed (the manager's 10 s history sampler and flush-metrics). */
  async sampleOnce(vmId: string): Promise<VmMetricsSample | undefined> {
    const vm = await this.resolve(vmId);
    return vm && this.sampler.sample(vmId, vm);
  }

  closeAll(): void {
    for (const f of this.feeds.values()) clearInterval(f.timer);
    this.feeds.clear();
  }

  private async tick(vmId: string, feed: Feed): Promise<void> {
    if (feed.busy) return;
    feed.busy = true;
    try {
      const vm = await this.resolve(vmId);
      if (!vm) return;
      const sample = await this.sampler.sample(vmId, vm);
      for (const l of feed.listeners) l(sample);
    } catch (err) {
      this.onError(vmId, err);
    } finally {
      feed.busy = false;
    }
  }
}
