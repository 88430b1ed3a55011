import type { Usage } from '@nqvm/api';
import { BadRequest, NotFound } from '../../domain/errors.ts';
import { type Granularity, meter } from './usage.meter.ts';
import type { UsageRepository } from './usage.repository.ts';

const MAX_BUCKETS = 24 * 31;
// Samples this far before the window give its first counter delta.
const SAMPLE_LOOKBACK_MS = 15 * 60_000;

/** Metered usage, computed from durable rows only: any manager, at any time, computes the same figures. */
export class UsageService {
  constructor(
    private readonly repo: UsageRepository,
    private readonly projectExists: (id: string) => Promise<boolean>,
  ) {}

  async usage(projectId: string, q: { from?: string; to?: string; granularity?: Granularity }): Promise<Usage> {
    if (!(await this.projectExists(projectId))) throw new NotFound('project', projectId);
    const now = await this.repo.now();
    const to = q.to ? new Date(q.to) : now;
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 86_400_000);
    const granularity = q.granularity ?? 'hour';
    if (!(from < to)) throw new BadRequest('invalid_range', '`from` must be before `to`', 'query.from');
    const step = granularity === 'hour' ? 3_600_000 : 86_400_000;
    if ((to.getTime() - from.getTime()) / step > MAX_BUCKETS)
      throw new BadRequest(
        'invalid_range',
        `at most ${MAX_BUCKETS} ${granularity}s per request; ask for a shorter range or a coarser granularity`,
        'query.from',
      );
    const [spans, samples] = await Promise.all([
      this.repo.spans(projectId, from, to),
      this.repo.netSamples(projectId, new Date(from.getTime() - SAMPLE_LOOKBACK_MS), to),
    ]);
    return meter(projectId, spans, samples, { from, to, now, granularity });
  }
}
