import { agentApi, type SnapshotType } from '@nqvm/api';
import { eq } from 'drizzle-orm';
import type { OperationHandler, Outcome } from '../operations/operations.catalog.ts';
import type { AgentClient, AgentTarget } from '../vms/agent-client.ts';
import { agentStatus, classifyAgentError, ending } from '../vms/vm-operations.ts';
import type { VmStateMachine } from '../vms/vm-state-machine.ts';
import type { VmRow } from '../vms/vms.repository.ts';
import type { SnapshotsRepository } from './snapshots.repository.ts';
import { snapshots } from './snapshots.table.ts';

export interface SnapshotOperationDeps {
  repo: SnapshotsRepository;
  vms: { get(id: string): Promise<VmRow | undefined> };
  target(hostId: string): Promise<AgentTarget>;
  agent: Pick<AgentClient, 'call'>;
  machine: VmStateMachine;
}

const cancelled = (reason: string): Outcome => ({ state: 'cancelled', reason });

/**
 * Saves a snapshot on the VM's host: `creating` → `ready` with its sizes, the event and the operation's end in one
 * transaction. The agent call is keyed by the snapshot id: run again after a crash it saves the same snapshot again
 * (its files are overwritten), never a second one. A save that fails for good takes its row and files away.
 */
export function snapshotHandler(d: SnapshotOperationDeps): OperationHandler {
  return {
    async run(ctx) {
      const op = ctx.op;
      const sid = String(op.input.snapshot_id);
      const snap = await d.repo.get(sid);
      if (!snap) return cancelled('the snapshot was deleted before it was saved');
      const vm = await d.vms.get(op.vmId ?? '');
      if (!vm) throw new Error('the VM was deleted before its snapshot was saved');
      if (vm.state !== 'running' && vm.state !== 'paused')
        throw new Error(`the VM is ${vm.state}: a snapshot needs a running or paused VM`);
      if (!snap.hostId) throw new Error('the snapshot has no host');
      await ctx.step('agent');
      const parent = op.input.parent_id ? { parent_id: String(op.input.parent_id) } : {};
      let info: { state_bytes: number; disk_bytes: number; save_ms: number };
      try {
        info = await d.agent.call(await d.target(snap.hostId), agentApi.snapshots.create, {
          params: { id: vm.id, sid },
          body: { snapshot_type: snap.snapshotType as SnapshotType, ...parent },
        });
      } catch (err) {
        throw classifyAgentError(err);
      }
      const reason = `saved, ${info.state_bytes} B state, ${info.disk_bytes} B disk`;
      const done = await d.machine.complete({
        vmId: vm.id,
        finish: ending(op, 'succeeded', reason),
        event: {
          actor: op.actor,
          action: 'snapshot',
          detail: { snapshot_id: sid, type: snap.snapshotType, parent_id: snap.parentId, ...info },
        },
        write: (tx) =>
          tx
            .update(snapshots)
            .set({ state: 'ready', stateBytes: info.state_bytes, diskBytes: info.disk_bytes, error: null })
            .where(eq(snapshots.id, sid)),
      });
      if (!done) return cancelled('another manager took this snapshot over');
      return { state: 'succeeded', reason };
    },
    async failed(op, reason) {
      const sid = String(op.input.snapshot_id);
      const snap = await d.repo.get(sid);
      // The agent removes a failed save's files itself; these are what a crash in the middle may have left.
      if (snap?.hostId)
        await d.agent
          .call(await d.target(snap.hostId), agentApi.snapshots.remove, { params: { sid } })
          .catch(() => undefined);
      await d.machine.complete({
        vmId: op.vmId,
        finish: ending(op, 'failed', reason, reason),
        event: {
          actor: op.actor,
          action: 'snapshot',
          result: 'error',
          detail: { snapshot_id: sid, error: reason },
        },
        write: (tx) => tx.delete(snapshots).where(eq(snapshots.id, sid)),
      });
    },
  };
}

/** Removes a snapshot's files on its host (none there is fine), then its row, its event and the operation's end. */
export function snapshotDeleteHandler(d: SnapshotOperationDeps): OperationHandler {
  return {
    async run(ctx) {
      const op = ctx.op;
      const sid = String(op.input.snapshot_id);
      const snap = await d.repo.get(sid);
      if (!snap) return { state: 'succeeded', reason: 'deleted' };
      if (snap.hostId) {
        try {
          await d.agent.call(await d.target(snap.hostId), agentApi.snapshots.remove, { params: { sid } });
        } catch (err) {
          if (agentStatus(err) !== 404) throw classifyAgentError(err);
        }
      }
      await ctx.step('forget');
      const done = await d.machine.complete({
        vmId: null,
        finish: ending(op, 'succeeded', 'deleted'),
        event: { resource: { type: 'snapshot', id: sid }, actor: op.actor, action: 'delete' },
        write: (tx) => tx.delete(snapshots).where(eq(snapshots.id, sid)),
      });
      if (!done) return cancelled('another manager took this delete over');
      return { state: 'succeeded', reason: 'deleted' };
    },
  };
}
