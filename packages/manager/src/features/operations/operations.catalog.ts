import { OPERATION_KINDS, type OperationKind } from '@nqvm/api';
import type { OperationRow } from './operations.repository.ts';

/** How an operation ended when its handler returns (a thrown error is a retry or a failure). */
export interface Outcome {
  state: 'succeeded' | 'cancelled';
  reason: string;
}

export interface OperationContext {
  op: OperationRow;
  /** Records that the operation reached `step`: a resumed operation starts from there. */
  step(name: string): Promise<void>;
}

export interface OperationHandler {
  /**
   * Does the work, from `ctx.op.step` on. Every external call it makes is idempotent (keyed by the operation or the
   * VM), so running a step again after a crash is safe. An operation it ended itself (in the transaction of its state
   * change) makes the worker's own ending a no-op.
   */
  run(ctx: OperationContext): Promise<Outcome>;
  /** Called once when the operation fails for good (no more retries): leave the VM in a settled state. */
  failed?(op: OperationRow, reason: string): Promise<void>;
}

export type OperationHandlers = Partial<Record<OperationKind, OperationHandler>>;

export class MissingOperationHandler extends Error {
  constructor(kinds: string[]) {
    super(`no handler for operation kind ${kinds.join(', ')}: the manager cannot run them, so it does not start`);
    this.name = 'MissingOperationHandler';
  }
}

/** The catalogue is complete or the manager does not start. */
export function assertComplete(handlers: OperationHandlers): Record<OperationKind, OperationHandler> {
  const missing = OPERATION_KINDS.filter((k) => !handlers[k]);
  if (missing.length) throw new MissingOperationHandler(missing);
  return handlers as Record<OperationKind, OperationHandler>;
}

/** Worth another attempt: the host could not be reached (it restarts, the network blips), not a refusal. */
export class Retryable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Retryable';
  }
}

export function backoffMs(attempt: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, attempt - 1));
}
