import { agentApi } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import type { MmdsService } from '../mmds/mmds.service.ts';
import { mountRoute } from '../mount.ts';
import { assertVmId } from '../vms/layout.ts';
import type { SnapshotService } from './snapshots.service.ts';

/** Snapshot and MMDS routes of the agent API (mounted behind the host-secret check). */
export function snapshotRoutes(api: FastifyInstance, snapshots: SnapshotService, mmds: MmdsService): void {
  const s = agentApi.snapshots;
  mountRoute(api, s.create, async (req) => snapshots.create(req.params.id, req.params.sid, req.body));
  mountRoute(api, s.remove, async (req) => {
    await snapshots.remove(req.params.sid);
  });
  mountRoute(api, s.instantiate, async (req) => snapshots.instantiate(req.params.sid, req.body.spec));
  mountRoute(api, s.clone, async (req) => snapshots.cloneStopped(assertVmId(req.params.id), req.body.spec));
  mountRoute(api, agentApi.mmds.put, async (req) => {
    await mmds.put(assertVmId(req.params.id), req.body);
  });
  mountRoute(api, agentApi.mmds.remove, async (req) => {
    await mmds.remove(assertVmId(req.params.id));
  });
}
