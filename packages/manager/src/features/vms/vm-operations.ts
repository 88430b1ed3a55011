import type { AgentVmStatus } from '@nqvm/api';
import { DomainError, UpstreamError } from '../../domain/errors.ts';
import {
  type OperationContext,
  type OperationHandler,
  type Outcome,
  Retryable,
} from '../operations/operations.catalog.ts';
import type { Ending, OperationRow } from '../operations/operations.repository.ts';
import type { AgentApi } from './agent-client.ts';
import type { VmStateMachine } from './vm-state-machine.ts';
import type { VmRow } from './vms.repository.ts';
import type { Launcher, VmsService } from './vms.service.ts';

export interface VmOperationDeps {
  vms: Pick<VmsService, 'agentSpec' | 'target' | 'takeHint'>;
  rows: { get(id: string): Promise<VmRow | undefined> };
  machine: VmStateMachine;
  agent: AgentApi;
}

const cancelled = (reason: string): Outcome => ({ state: 'cancelled', reason });

/**
 * The host could not be reached (restarting, a network blip) or asked to be tried again (503): try again later.
 * Its other answers are final.
 */
export function classifyAgentError(err: unknown): unknown {
  const status = err instanceof UpstreamError ? err.extra?.agent_status : undefined;
  if (err instanceof UpstreamError && (status === undefined || status === 503)) return new Retryable(err.message);
  return err;
}

export function agentStatus(err: unknown): number | undefined {
  if (err instanceof UpstreamError) return err.extra?.agent_status as number | undefined;
  if (err instanceof DomainError) return err.status;
  return undefined;
}

export function ending(op: OperationRow, state: Ending['state'], reason: string, error?: string): Ending {
  return { id: op.id, owner: op.leaseOwner ?? '', state, reason, ...(error !== undefined ? { error } : {}) };
}

/**
 * Boots a VM (create, start, restart, instantiate, clone): `creating` → `starting` → `running`, or `error` with the
 * reason. The agent call carries the operation id and is idempotent: a retry after a crash adopts the VMM the first
 * attempt started. A VM that left `starting` meanwhile (stopped, deleted) cancels the boot.
 */
export function bootHandler(d: VmOperationDeps, launch: Launcher): OperationHandler {
  return {
    async run(ctx: OperationContext): Promise<Outcome> {
      const op = ctx.op;
      let row = await d.rows.get(op.vmId ?? '');
      if (!row) return cancelled('the VM was deleted before it booted');
      if (row.state === 'creating') {
        const moved = await d.machine.change({ vmId: row.id, from: ['creating'], to: 'starting' });
        row = moved?.row ?? (await d.rows.get(row.id));
        if (!row) return cancelled('the VM was deleted before it booted');
      }
      if (row.state !== 'starting') return cancelled(`the VM is ${row.state}: this boot was overtaken`);
      if (!row.hostId) throw new Error('the VM has no host');
      const hint = d.vms.takeHint(op.id);
      const [target, spec] = await Promise.all([d.vms.target(row.hostId, hint?.host), d.vms.agentSpec(row, hint)]);
      await ctx.step('agent');
      let status: AgentVmStatus;
      try {
        status = await launch(target, { ...spec, operation_id: op.id }, op.input);
      } catch (err) {
        throw classifyAgentError(err);
      }
      const reason = `running, pid ${status.pid}`;
      const done = await d.machine.change({
        vmId: row.id,
        from: ['starting'],
        to: 'running',
        patch: { pid: status.pid, bootedAt: new Date(), lastError: null, guestReadyAt: null },
        event: { actor: op.actor, action: 'boot', detail: { pid: status.pid } },
        finish: ending(op, 'succeeded', reason),
      });
      if (!done) return cancelled('the VM left starting while it booted; the operation that moved it owns the VMM');
      return { state: 'succeeded', reason };
    },
    async failed(op, reason) {
      await d.machine.change({
        vmId: op.vmId ?? '',
        from: ['creating', 'starting'],
        to: 'error',
        patch: { lastError: reason, pid: null },
        event: { actor: op.actor, action: 'boot', result: 'error', detail: { error: reason } },
        finish: ending(op, 'failed', reason, reason),
      });
    },
  };
}

/**
 * ACPI power-down, forced after the timeout (input `force`: the VMM killed at once, the event says so); a VM its
 * agent does not know is stopped already.
 */
export function stopHandler(d: VmOperationDeps): OperationHandler {
  return {
    async run({ op }) {
      const row = await d.rows.get(op.vmId ?? '');
      if (!row) return cancelled('the VM was deleted');
      if (row.state !== 'stopping') return cancelled(`the VM is ${row.state}: this stop was overtaken`);
      const timeoutS = Number(op.input.timeout_s ?? 20);
      const force = op.input.force === true;
      if (row.hostId) {
        try {
          await d.agent.stop(await d.vms.target(row.hostId), row.id, timeoutS, force);
        } catch (err) {
          if (agentStatus(err) !== 404) throw classifyAgentError(err);
        }
      }
      const reason = 'stopped';
      const done = await d.machine.change({
        vmId: row.id,
        from: ['stopping'],
        to: 'stopped',
        patch: { pid: null },
        event: { actor: op.actor, action: 'stopped', ...(force ? { detail: { forced: true } } : {}) },
        finish: ending(op, 'succeeded', reason),
      });
      if (!done) return cancelled('the VM left stopping meanwhile');
      return { state: 'succeeded', reason };
    },
    async failed(op, reason) {
      await d.machine.change({
        vmId: op.vmId ?? '',
        from: ['stopping'],
        to: 'error',
        patch: { lastError: reason },
        event: { actor: op.actor, action: 'stop', result: 'error', detail: { error: reason } },
        finish: ending(op, 'failed', reason, reason),
      });
    },
  };
}

/** The VMM, TAPs and directory go on the host (nothing there is fine), then the row with its addresses. */
export function deleteHandler(d: VmOperationDeps): OperationHandler {
  return {
    async run(ctx) {
      const op = ctx.op;
      const row = await d.rows.get(op.vmId ?? '');
      if (!row) return { state: 'succeeded', reason: 'deleted' };
      if (row.state !== 'deleting') return cancelled(`the VM is ${row.state}: this delete was overtaken`);
      if (row.hostId) {
        try {
          await d.agent.remove(await d.vms.target(row.hostId), row.id);
        } catch (err) {
          if (agentStatus(err) !== 404) throw classifyAgentError(err);
        }
      }
      await ctx.step('forget');
      const reason = 'deleted';
      await d.machine.remove(
        row.id,
        ['deleting'],
        { actor: op.actor, action: 'deleted' },
        ending(op, 'succeeded', reason),
      );
      return { state: 'succeeded', reason };
    },
    async failed(op, reason) {
      const why = `delete failed: ${reason}`;
      await d.machine.change({
        vmId: op.vmId ?? '',
        from: ['deleting'],
        to: 'error',
        patch: { lastError: why },
        event: { actor: op.actor, action: 'delete', result: 'error', detail: { error: reason } },
        finish: ending(op, 'failed', why, reason),
      });
    },
  };
}
