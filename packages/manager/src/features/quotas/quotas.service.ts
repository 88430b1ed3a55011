import { QUOTA_RESOURCES, type Quota, type QuotaRequest, type QuotaResource } from '@nqvm/api';
import { NotFound, QuotaExceeded } from '../../domain/errors.ts';
import type { Subject } from '../alerts/alerts.repository.ts';
import type { EventsService } from '../events/events.service.ts';
import type { Tx } from '../operations/operations.repository.ts';
import type { VmRow } from '../vms/vms.repository.ts';
import type { QuotaRow, QuotasRepository, Use } from './quotas.repository.ts';

/** What a write adds to a project's use; 0 still checks that the project is not past that limit already. */
export type Adds = Partial<Use>;

const GIB = 1024 ** 3;
export const gib = (bytes: number) => bytes / GIB;

/** Usage is compared with a little slack so that fractional GiB sums do not refuse a write that exactly fits. */
const EPSILON = 1e-9;

/**
 * Project quotas. A write that adds to a project's use calls `enforceIn` in its own transaction, after writing: under
 * the project's lock the use is read again (it includes the write, and every write committed before the lock was
 * granted), so two writes racing for the last slot are serialized and the second sees the first.
 */
export class QuotasService {
  constructor(
    private readonly repo: QuotasRepository,
    private readonly events: EventsService,
    /** Told after a quota changed (the rate-limit overrides are read again). */
    private readonly onChanged: () => void = () => {},
  ) {}

  async get(projectId: string): Promise<Quota> {
    if (!(await this.repo.projectExists(projectId))) throw new NotFound('project', projectId);
    const [quota, used] = await Promise.all([this.repo.get(projectId), this.repo.use(projectId)]);
    return toQuota(projectId, quota, used);
  }

  async put(projectId: string, req: QuotaRequest, actor: string): Promise<Quota> {
    if (!(await this.repo.projectExists(projectId))) throw new NotFound('project', projectId);
    await this.repo.put(projectId, req);
    this.onChanged();
    await this.events.record({
      actor,
      resourceType: 'project',
      resourceId: projectId,
      action: 'quota',
      detail: { ...req },
    });
    return this.get(projectId);
  }

  /** Projects using more than `percent` of one of their limits, each with its fullest resource (alert rules). */
  async above(projectId: string | null, percent: number): Promise<Subject[]> {
    const out: Subject[] = [];
    for (const p of await this.repo.all()) {
      if (projectId && p.projectId !== projectId) continue;
      const used = await this.repo.use(p.projectId);
      let worst: { k: QuotaResource; share: number } | undefined;
      for (const k of QUOTA_RESOURCES) {
        const limit = p.quota[k];
        if (limit === null) continue;
        const share = limit === 0 ? (used[k] > 0 ? Number.POSITIVE_INFINITY : 0) : (100 * used[k]) / limit;
        if (share > percent && (!worst || share > worst.share)) worst = { k, share };
      }
      if (!worst) continue;
      const pct = Number.isFinite(worst.share) ? `${Math.round(worst.share)} %` : 'over';
      out.push({
        type: 'project',
        id: p.projectId,
        name: p.name,
        reason: `${worst.k} at ${pct} of its quota (${round(used[worst.k])} of ${p.quota[worst.k]})`,
      });
    }
    return out;
  }

  /** Refuses (rolling the transaction back) a write that took the project past a limit it adds to. */
  async enforceIn(tx: Tx, projectId: string, adds: Adds): Promise<void> {
    const touched = (Object.keys(adds) as QuotaResource[]).filter((k) => adds[k] !== undefined);
    if (touched.length === 0) return;
    const before = await this.repo.get(projectId, tx);
    if (!before || touched.every((k) => before[k] === null)) return;
    await this.repo.lockIn(tx, projectId);
    const quota = (await this.repo.get(projectId, tx)) ?? before;
    const used = await this.repo.use(projectId, tx);
    for (const k of touched) {
      const limit = quota[k];
      const add = adds[k] ?? 0;
      if (limit !== null && used[k] > limit + EPSILON) throw new QuotaExceeded(k, limit, round(used[k] - add), add);
    }
  }

  /** The same, for a row just written (its project read in the transaction). */
  private async enforceRowIn(tx: Tx, table: 'vms' | 'snapshots' | 'images', id: string, adds: Adds): Promise<void> {
    const projectId = await this.repo.projectOf(tx, table, id);
    if (projectId) await this.enforceIn(tx, projectId, adds);
  }

  /** A new VM (or clone, or instance of a snapshot) counts as a VM with its disk, and holds resources if it boots. */
  created(tx: Tx, row: VmRow, rootfsBytes: number): Promise<void> {
    const holds = row.state !== 'stopped';
    return this.enforceRowIn(tx, 'vms', row.id, { vms: 1, disk_gib: gib(rootfsBytes), ...(holds ? holding(row) : {}) });
  }

  started(tx: Tx, row: VmRow): Promise<void> {
    return this.enforceRowIn(tx, 'vms', row.id, holding(row));
  }

  /** Its size is known once saved: a project already at its disk quota takes no more. */
  snapshotAdded(tx: Tx, snapshotId: string): Promise<void> {
    return this.enforceRowIn(tx, 'snapshots', snapshotId, { snapshots: 1, disk_gib: 0 });
  }

  /** Its size is counted once known (or announced): a project already at its disk quota imports no more. */
  imageAdded(tx: Tx, imageId: string): Promise<void> {
    return this.enforceRowIn(tx, 'images', imageId, { disk_gib: 0 });
  }
}

const holding = (row: Pick<VmRow, 'vcpu' | 'memMib'>): Adds => ({
  running_vms: 1,
  vcpus: row.vcpu,
  memory_mib: row.memMib,
});

const round = (n: number) => Math.round(n * 1e6) / 1e6;

function toQuota(projectId: string, q: QuotaRow | undefined, used: Use): Quota {
  return {
    project_id: projectId,
    vcpus: q?.vcpus ?? null,
    memory_mib: q?.memory_mib ?? null,
    vms: q?.vms ?? null,
    running_vms: q?.running_vms ?? null,
    disk_gib: q?.disk_gib ?? null,
    snapshots: q?.snapshots ?? null,
    functions: q?.functions ?? null,
    rate_limit_per_token: q?.rate_limit_per_token ?? null,
    rate_limit_per_user: q?.rate_limit_per_user ?? null,
    used: { ...used, disk_gib: round(used.disk_gib) },
    updated_at: q?.updated_at?.toISOString() ?? null,
  };
}
