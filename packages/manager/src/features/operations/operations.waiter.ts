import { DomainError } from '../../domain/errors.ts';
import type { OperationStore } from './operations.repository.ts';
import type { Finished, OperationWorker } from './operations.worker.ts';

export class OperationFailed extends DomainError {
  constructor(id: string, reason: string) {
    super(502, 'operation_failed', reason, undefined, { operation_id: id });
  }
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Lets a request answer when the operation it queued ends, wherever it runs: this process's worker tells at once (with
 * the handler's own error, so the client gets its code); an operation another manager claimed is read from the table.
 */
export class OperationWaiter {
  private worker: Pick<OperationWorker, 'waitLocal' | 'runs'> | undefined;

  constructor(
    private readonly store: Pick<OperationStore, 'get'>,
    private readonly pollMs = 1000,
  ) {}

  /** The worker is built after the services that queue operations. */
  attach(worker: Pick<OperationWorker, 'waitLocal' | 'runs'>): void {
    this.worker = worker;
  }

  /** How operation `id` ended, or undefined when it is still live after `timeoutMs`. */
  async end(id: string, timeoutMs: number): Promise<Finished | undefined> {
    let done = false;
    const local = this.worker?.waitLocal(id, timeoutMs) ?? Promise.resolve(undefined);
    const polled = (async (): Promise<Finished | undefined> => {
      const deadline = Date.now() + timeoutMs;
      while (!done && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, Math.min(this.pollMs, Math.max(0, deadline - Date.now()))));
        if (done) return undefined;
        const row = await this.store.get(id);
        // One this process runs is told by its worker (with the error object) an instant after the row is written.
        if (row && TERMINAL.has(row.state) && !this.worker?.runs(id))
          return { id, state: row.state as Finished['state'], reason: row.reason ?? row.state };
      }
      return undefined;
    })();
    const first = await Promise.race([local.then((f) => f ?? polled), polled.then((f) => f ?? local)]);
    done = true;
    return first;
  }

  /** Ends like `end`, but a failed operation throws: its handler's error here, its reason from another manager. */
  async result(id: string, timeoutMs: number): Promise<Finished | undefined> {
    const f = await this.end(id, timeoutMs);
    if (f?.state === 'failed') throw f.error ?? new OperationFailed(id, f.reason);
    return f;
  }
}
