import { EventEmitter } from 'node:events';
import type { OperationKind } from '@nqvm/api';
import type { FastifyBaseLogger } from 'fastify';
import { LeasePoller } from '../../domain/lease-poller.ts';
import { backoffMs, type OperationHandler, Retryable } from './operations.catalog.ts';
import type { OperationRow, OperationStore } from './operations.repository.ts';

export interface WorkerDeps {
  store: OperationStore;
  handlers: Record<OperationKind, OperationHandler>;
  /** This process's name in leases. */
  owner: string;
  log: Pick<FastifyBaseLogger, 'error' | 'warn' | 'info'>;
  now?: () => Date;
  leaseMs?: number;
  /** Operations run side by side (each its own VM) at most. */
  concurrency?: number;
  maxAttempts?: number;
}

export class LeaseLost extends Error {
  constructor(id: string) {
    super(`operation ${id} was taken over by another manager`);
    this.name = 'LeaseLost';
  }
}

/** How an operation ended, as seen by this process (waiters get the handler's own error object). */
export interface Finished {
  id: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  reason: string;
  error?: unknown;
}

/**
 * Runs operations claimed by lease from the operations table. Every manager runs one; each tick claims what is due
 * (queued, or running under an expired lease), runs it from its recorded step, renews the lease meanwhile, and ends it:
 * succeeded or cancelled as its handler says, queued again with backoff on a retryable error, failed otherwise.
 */
export class OperationWorker {
  private readonly finished = new EventEmitter();
  private readonly poller: LeasePoller<OperationRow>;

  constructor(private readonly d: WorkerDeps) {
    this.finished.setMaxListeners(0);
    this.poller = new LeasePoller({
      claim: (free) => {
        const now = this.now();
        return this.d.store.claim(this.d.owner, now, new Date(now.getTime() + this.leaseMs), free);
      },
      run: (op) => this.run(op),
      key: (op) => op.id,
      concurrency: this.d.concurrency ?? 16,
      messages: { claim: 'claiming operations failed', run: 'running an operation failed' },
      log: this.d.log,
      // Operations queued in the same turn (a burst of creates) are claimed together.
      deferPass: true,
      // `nqvm up` starts the timer once its agent answers; what is queued before runs at once all the same.
      activeBeforeStart: true,
    });
  }

  private now(): Date {
    return (this.d.now ?? (() => new Date()))();
  }

  private get leaseMs(): number {
    return this.d.leaseMs ?? 15_000;
  }

  /** Claims what is due and runs it; settles when those runs have ended (tests await it). */
  async tick(): Promise<void> {
    await Promise.all(await this.poller.claimAndRun());
  }

  /** Claims soon (an operation was just queued or ended; the VM's next one may be due). */
  kick(): void {
    this.poller.kick();
  }

  start(intervalMs = 1000): void {
    this.poller.start(intervalMs);
  }

  /** Stops claiming and waits for the runs in progress. */
  stop(): Promise<void> {
    return this.poller.stop();
  }

  /** Waits until this process runs nothing. */
  idle(): Promise<void> {
    return this.poller.idle();
  }

  /** Whether this process is running operation `id` now. */
  runs(id: string): boolean {
    return this.poller.runs(id);
  }

  /** Resolves when operation `id` ends in this process, or after `timeoutMs` with undefined. */
  waitLocal(id: string, timeoutMs: number): Promise<Finished | undefined> {
    return new Promise((resolve) => {
      const done = (f: Finished) => {
        clearTimeout(t);
        resolve(f);
      };
      const t = setTimeout(() => {
        this.finished.off(id, done);
        resolve(undefined);
      }, timeoutMs);
      t.unref();
      this.finished.once(id, done);
    });
  }

  private async run(op: OperationRow): Promise<void> {
    const handler = this.d.handlers[op.kind as OperationKind];
    const renew = setInterval(() => {
      void this.d.store
        .renew(op.id, this.d.owner, new Date(this.now().getTime() + this.leaseMs))
        .catch((err) => this.d.log.warn({ err, operation_id: op.id }, 'lease renewal failed'));
    }, this.leaseMs / 3);
    renew.unref();
    const ctx = {
      op,
      step: async (name: string) => {
        if (!(await this.d.store.step(op.id, this.d.owner, name, this.now()))) throw new LeaseLost(op.id);
        op.step = name;
      },
    };
    let end: Finished | undefined;
    try {
      if (!handler) throw new Error(`no handler for ${op.kind}`);
      const outcome = await handler.run(ctx);
      await this.d.store.finish({ id: op.id, owner: this.d.owner, ...outcome }, this.now());
      end = { id: op.id, ...outcome };
    } catch (err) {
      end = await this.failed(op, handler, err);
    } finally {
      clearInterval(renew);
    }
    if (end) this.finished.emit(op.id, end);
  }

  private async failed(
    op: OperationRow,
    handler: OperationHandler | undefined,
    err: unknown,
  ): Promise<Finished | undefined> {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof LeaseLost) {
      this.d.log.warn({ operation_id: op.id }, message);
      return { id: op.id, state: 'cancelled', reason: message, error: err };
    }
    try {
      if (err instanceof Retryable && op.attempts < (this.d.maxAttempts ?? 6)) {
        const at = new Date(this.now().getTime() + backoffMs(op.attempts));
        await this.d.store.retry(op.id, this.d.owner, at, message, this.now());
        this.d.log.warn(
          { operation_id: op.id, kind: op.kind, attempt: op.attempts, err: message },
          'operation will retry',
        );
        // Not an end: a waiter hears about it when a later attempt finishes.
        return undefined;
      }
      const reason = err instanceof Retryable ? `gave up after ${op.attempts} attempts: ${message}` : message;
      await handler?.failed?.(op, reason);
      await this.d.store.finish(
        { id: op.id, owner: this.d.owner, state: 'failed', reason, error: message },
        this.now(),
      );
      this.d.log.warn({ operation_id: op.id, kind: op.kind, vm_id: op.vmId, reason }, 'operation failed');
      return { id: op.id, state: 'failed', reason, error: err };
    } catch (e) {
      // Ending it could not be written (the database went away): its lease expires and a worker resumes it.
      this.d.log.error({ err: e, operation_id: op.id }, 'could not record the end of an operation');
      return { id: op.id, state: 'failed', reason: message, error: err };
    }
  }
}
