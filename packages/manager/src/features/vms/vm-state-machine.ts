import type { Event, OperationKind, VmState } from '@nqvm/api';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../../db/client.ts';
import { events, vmNics, vms } from '../../db/schema.ts';
import { type EventsService, toEvent } from '../events/events.service.ts';
import type { Ending, OperationRow, OperationsRepository, Tx } from '../operations/operations.repository.ts';
import { canTransition } from './vm-state.ts';
import type { NewVmRow, NicRow, VmRow } from './vms.repository.ts';

export interface EventSpec {
  /** What the event is about when it is not the VM itself (a snapshot). */
  resource?: { type: string; id: string };
  actor: string;
  action: string;
  result?: 'ok' | 'error' | 'info';
  detail?: Record<string, unknown>;
}

export interface StartOperation {
  kind: OperationKind;
  actor: string;
  input?: Record<string, unknown>;
}

export interface StateChange {
  vmId: string;
  /** The change happens only if the VM is in one of these (compare-and-set); each must allow `to`. */
  from: readonly VmState[];
  to: VmState;
  patch?: Partial<NewVmRow>;
  event?: EventSpec;
  /** An operation this change starts, queued in the same transaction. */
  operation?: StartOperation;
  /** The operation this change ends (its handler's last step), in the same transaction. */
  finish?: Ending;
  /** Runs after the row was written, in the same transaction; throwing undoes the change (quota checks). */
  check?: (tx: Tx, row: VmRow) => Promise<void>;
}

export interface Changed {
  row: VmRow;
  operation?: OperationRow;
}

/** Rolls back a completion whose operation another worker holds now. */
class LeaseGone extends Error {}

export class IllegalTransition extends Error {
  constructor(from: VmState, to: VmState) {
    super(`the VM state machine has no transition ${from} -> ${to}`);
    this.name = 'IllegalTransition';
  }
}

/**
 * The one place a VM's state changes. Each change checks the transition table, then writes the row, its event and the
 * operation it starts or ends in one transaction; a database trigger refuses any other write of `vms.state`.
 */
export class VmStateMachine {
  /** Told about every operation queued here (the worker claims it at once). */
  onQueued: (op: OperationRow) => void = () => {};

  constructor(
    private readonly db: Db,
    private readonly ops: OperationsRepository,
    private readonly events: EventsService,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async change(c: StateChange): Promise<Changed | undefined> {
    for (const f of c.from) if (!canTransition(f, c.to)) throw new IllegalTransition(f, c.to);
    const out = await this.db.transaction(async (tx) => {
      await tx.execute(sql`SELECT set_config('nqvm.vm_state_change', 'on', true)`);
      const [row] = await tx
        .update(vms)
        .set({ ...c.patch, state: c.to, updatedAt: this.now() })
        .where(and(eq(vms.id, c.vmId), inArray(vms.state, [...c.from])))
        .returning();
      if (!row) return undefined;
      await c.check?.(tx, row);
      return { row, ...(await this.sideEffects(tx, c.vmId, c)) };
    });
    this.announce(out);
    return out && { row: out.row, ...(out.operation ? { operation: out.operation } : {}) };
  }

  /** A new VM (in `creating` or `stopped`), inserted by `insert`, with its event and the operation that boots it. */
  async create(
    insert: (tx: Tx) => Promise<{ row: VmRow; nic: NicRow | null }>,
    extra: {
      event: (row: VmRow) => EventSpec;
      operation?: StartOperation;
      /** Runs once the transaction committed, before the operation is announced to the worker. */
      beforeQueued?: (row: VmRow, op: OperationRow, nic: NicRow | null) => void;
    },
  ): Promise<Changed & { nic: NicRow | null }> {
    const out = await this.db.transaction(async (tx) => {
      const { row, nic } = await insert(tx);
      const effects = await this.sideEffects(tx, row.id, {
        event: extra.event(row),
        ...(extra.operation ? { operation: extra.operation } : {}),
      });
      return { row, nic, ...effects };
    });
    if (out.operation) extra.beforeQueued?.(out.row, out.operation, out.nic);
    this.announce(out);
    return { row: out.row, nic: out.nic, ...(out.operation ? { operation: out.operation } : {}) };
  }

  /** The last step of a delete: the row goes (with its NICs), its event and the operation's end are written with it. */
  async remove(vmId: string, from: readonly VmState[], event: EventSpec, finish?: Ending): Promise<boolean> {
    const out = await this.db.transaction(async (tx) => {
      const gone = await tx
        .delete(vms)
        .where(and(eq(vms.id, vmId), inArray(vms.state, [...from])))
        .returning({ id: vms.id });
      if (!gone.length) return undefined;
      await tx.delete(vmNics).where(eq(vmNics.vmId, vmId));
      return this.sideEffects(tx, vmId, { event, ...(finish ? { finish } : {}) });
    });
    this.announce(out);
    return out !== undefined;
  }

  /**
   * Work on a VM that does not change its state (a snapshot, a live device change): the operation is queued with
   * `write`'s rows and its event in one transaction.
   */
  async queue<T>(c: {
    vmId: string | null;
    operation: StartOperation;
    event?: EventSpec;
    write?: (tx: Tx) => Promise<T>;
  }): Promise<{ operation: OperationRow; value: T | undefined }> {
    const out = await this.db.transaction(async (tx) => {
      const value = await c.write?.(tx);
      const effects = await this.sideEffects(tx, c.vmId, {
        operation: c.operation,
        ...(c.event ? { event: c.event } : {}),
      });
      return { ...effects, value };
    });
    this.announce(out);
    return { operation: out.operation!, value: out.value };
  }

  /**
   * The last step of such an operation: `write`, its event and the operation's end in one transaction. Nothing is
   * written (and false returned) when the operation is no longer this worker's (another manager took it over).
   */
  async complete(c: {
    vmId: string | null;
    finish: Ending;
    event?: EventSpec;
    write?: (tx: Tx) => Promise<unknown>;
  }): Promise<boolean> {
    const out = await this.db
      .transaction(async (tx) => {
        await c.write?.(tx);
        if (!(await this.ops.finishIn(tx, c.finish, this.now()))) throw new LeaseGone();
        return this.sideEffects(tx, c.vmId, c.event ? { event: c.event } : {});
      })
      .catch((err) => {
        if (err instanceof LeaseGone) return undefined;
        throw err;
      });
    this.announce(out);
    return out !== undefined;
  }

  /** An event (and maybe an operation's end) about a VM whose state does not change. */
  async note(vmId: string, event: EventSpec, finish?: Ending): Promise<void> {
    const out = await this.db.transaction((tx) => this.sideEffects(tx, vmId, { event, ...(finish ? { finish } : {}) }));
    this.announce(out);
  }

  private async sideEffects(
    tx: Tx,
    vmId: string | null,
    c: { event?: EventSpec; operation?: StartOperation; finish?: Ending },
  ): Promise<{ event?: Event; operation?: OperationRow }> {
    const operation = c.operation ? await this.ops.insertIn(tx, { ...c.operation, vmId }) : undefined;
    if (c.finish) await this.ops.finishIn(tx, c.finish, this.now());
    let event: Event | undefined;
    if (c.event) {
      const detail = {
        ...c.event.detail,
        ...(operation ? { operation_id: operation.id } : c.finish ? { operation_id: c.finish.id } : {}),
      };
      const [row] = await tx
        .insert(events)
        .values({
          actor: c.event.actor,
          resourceType: c.event.resource?.type ?? 'vm',
          resourceId: c.event.resource?.id ?? vmId,
          action: c.event.action,
          result: c.event.result ?? 'ok',
          detail,
        })
        .returning();
      event = toEvent(row!);
    }
    return { ...(event ? { event } : {}), ...(operation ? { operation } : {}) };
  }

  private announce(out: { event?: Event; operation?: OperationRow } | undefined): void {
    if (out?.event) this.events.publish(out.event);
    if (out?.operation) this.onQueued(out.operation);
  }
}
