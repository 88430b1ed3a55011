import type { UpdateVmRequest, Vm } from '@nqvm/api';
import { Conflict, NotFound } from '../../domain/errors.ts';
import type { EventsService } from '../events/events.service.ts';
import { isUniqueViolation, type NewVmRow, type VmsRepository } from './vms.repository.ts';
import type { VmsService } from './vms.service.ts';

/**
 * What a VM is called and how it is labelled: name, description, tags, owner, environment, restart policy.
 * None of it reaches the host (the guest keeps the hostname it booted with), so it applies in any state.
 */
export class VmUpdates {
  constructor(
    private readonly repo: VmsRepository,
    private readonly events: EventsService,
    private readonly vms: VmsService,
  ) {}

  async update(id: string, req: UpdateVmRequest, actor: string): Promise<Vm> {
    const before = await this.vms.row(id);
    const patch: Partial<NewVmRow> = {
      ...(req.name !== undefined ? { name: req.name } : {}),
      ...(req.description !== undefined ? { description: req.description } : {}),
      ...(req.tags !== undefined ? { tags: req.tags } : {}),
      ...(req.owner !== undefined ? { owner: req.owner } : {}),
      ...(req.environment !== undefined ? { environment: req.environment } : {}),
      ...(req.restart_policy !== undefined ? { restartPolicy: req.restart_policy } : {}),
    };
    const row = await this.repo.update(id, patch).catch((err: unknown) => {
      if (isUniqueViolation(err)) throw new Conflict('vm_name_taken', `a VM named ${req.name} exists`, 'body.name');
      throw err;
    });
    if (!row) throw new NotFound('vm', id);
    await this.events.record({
      actor,
      resourceType: 'vm',
      resourceId: id,
      action: 'update',
      detail: {
        changed: Object.keys(req),
        ...(req.name && req.name !== before.name ? { renamed_from: before.name } : {}),
      },
    });
    return this.vms.get(id);
  }
}
