import { AgentMmds, AgentSnapshotCreate, AgentVmSpec } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { MmdsService } from '../mmds/mmds.service.ts';
import { assertVmId } from '../vms/layout.ts';
import type { SnapshotService } from './snapshots.service.ts';

const VmSnap = Type.Object({ id: Type.String({ maxLength: 64 }), sid: Type.String({ maxLength: 64 }) });
const Snap = Type.Object({ sid: Type.String({ maxLength: 64 }) });
const Id = Type.Object({ id: Type.String({ maxLength: 64 }) });
const Instantiate = Type.Object({ spec: AgentVmSpec }, { additionalProperties: false });

/** Snapshot and MMDS routes of the agent API (mounted behind the host-secret check). */
export function snapshotRoutes(api: FastifyInstance, snapshots: SnapshotService, mmds: MmdsService): void {
  api.post<{ Params: { id: string; sid: string }; Body: AgentSnapshotCreate }>(
    '/agent/v1/vms/:id/snapshots/:sid',
    { schema: { params: VmSnap, body: AgentSnapshotCreate } },
    async (req) => snapshots.create(req.params.id, req.params.sid, req.body),
  );
  api.delete<{ Params: { sid: string } }>(
    '/agent/v1/snapshots/:sid',
    { schema: { params: Snap } },
    async (req, reply) => {
      await snapshots.remove(req.params.sid);
      return reply.code(204).send();
    },
  );
  api.post<{ Params: { sid: string }; Body: { spec: AgentVmSpec } }>(
    '/agent/v1/snapshots/:sid/instantiate',
    { schema: { params: Snap, body: Instantiate } },
    async (req) => snapshots.instantiate(req.params.sid, req.body.spec),
  );
  api.post<{ Params: { id: string }; Body: { spec: AgentVmSpec } }>(
    '/agent/v1/vms/:id/clone',
    { schema: { params: Id, body: Instantiate } },
    async (req) => snapshots.cloneStopped(assertVmId(req.params.id), req.body.spec),
  );
  api.put<{ Params: { id: string }; Body: AgentMmds }>(
    '/agent/v1/vms/:id/mmds',
    { schema: { params: Id, body: AgentMmds } },
    async (req, reply) => {
      await mmds.put(assertVmId(req.params.id), req.body);
      return reply.code(204).send();
    },
  );
  api.delete<{ Params: { id: string } }>('/agent/v1/vms/:id/mmds', { schema: { params: Id } }, async (req, reply) => {
    await mmds.remove(assertVmId(req.params.id));
    return reply.code(204).send();
  });
}
