import type { Operation, OperationKind } from '@nqvm/api';
import { BadRequest, NotFound } from '../../domain/errors.ts';
import type { OperationFilter, OperationRow, OperationsRepository } from './operations.repository.ts';

export function toOperation(r: OperationRow): Operation {
  return {
    id: r.id,
    kind: r.kind as OperationKind,
    vm_id: r.vmId,
    state: r.state,
    step: r.step,
    attempts: r.attempts,
    actor: r.actor,
    error: r.error,
    reason: r.reason,
    lease_owner: r.leaseOwner,
    lease_expires_at: r.leaseExpiresAt?.toISOString() ?? null,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    finished_at: r.finishedAt?.toISOString() ?? null,
  };
}

export class OperationsService {
  constructor(private readonly repo: OperationsRepository) {}

  async get(id: string): Promise<Operation> {
    const row = await this.repo.get(id);
    if (!row) throw new NotFound('operation', id);
    return toOperation(row);
  }

  /** Newest first; the cursor is the last item's position in the table (keyset on an indexed column). */
  async list(
    f: OperationFilter,
    limit: number,
    cursor?: string,
  ): Promise<{ items: Operation[]; next_cursor: string | null }> {
    if (cursor !== undefined && !/^[0-9]{1,15}$/.test(cursor))
      throw new BadRequest('invalid_cursor', 'cursor is not valid', 'query.cursor');
    const rows = await this.repo.list(f, limit + 1, cursor === undefined ? undefined : Number(cursor));
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page.map(toOperation), next_cursor: rows.length > limit && last ? String(last.seq) : null };
  }
}
