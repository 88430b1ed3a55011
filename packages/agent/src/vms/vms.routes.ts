import { agentApi } from '@nqvm/api';
import type { FastifyInstance } from 'fastify';
import { mountRoute } from '../mount.ts';
import { AgentError } from './errors.ts';
import { assertVmId } from './layout.ts';
import type { VmService } from './vms.service.ts';

const DEFAULT_STOP_TIMEOUT_S = 20;

/** The VM lifecycle routes of the agent API (mounted behind the host-secret check). */
export function vmRoutes(api: FastifyInstance, vms: VmService): void {
  const r = agentApi.vms;
  mountRoute(api, r.list, async () => ({ items: vms.list() }));
  mountRoute(api, r.get, async (req) => vms.get(req.params.id));
  mountRoute(api, r.boot, async (req) => {
    if (assertVmId(req.params.id) !== req.body.vm_id)
      throw new AgentError(400, 'id_mismatch', 'the path id and body.vm_id differ', { field: 'body.vm_id' });
    return vms.boot(req.body);
  });
  mountRoute(api, r.stop, async (req) =>
    vms.stop(req.params.id, req.body?.timeout_s ?? DEFAULT_STOP_TIMEOUT_S, req.body?.force === true),
  );
  mountRoute(api, r.pause, async (req) => vms.action(req.params.id, 'pause'));
  mountRoute(api, r.resume, async (req) => vms.action(req.params.id, 'resume'));
  mountRoute(api, r.ctrlAltDel, async (req) => vms.action(req.params.id, 'ctrl-alt-del'));
  mountRoute(api, r.remove, async (req) => {
    await vms.remove(req.params.id);
  });
}
