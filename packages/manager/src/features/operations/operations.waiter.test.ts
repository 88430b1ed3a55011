import { describe, expect, it } from 'vitest';
import type { OperationRow } from './operations.repository.ts';
import { OperationFailed, OperationWaiter } from './operations.waiter.ts';
import type { Finished } from './operations.worker.ts';

function fakeWorker() {
  const waiting = new Map<string, (f: Finished | undefined) => void>();
  const running = new Set<string>();
  return {
    running,
    waitLocal: (id: string) => new Promise<Finished | undefined>((resolve) => waiting.set(id, resolve)),
    runs: (id: string) => running.has(id),
    end: (f: Finished) => waiting.get(f.id)?.(f),
  };
}

function fakeStore(rows: Record<string, Partial<OperationRow>>) {
  return { get: async (id: string) => rows[id] as OperationRow | undefined };
}

describe('waiting for an operation to end', () => {
  it("answers with the local worker's end, the handler's own error thrown for a failure", async () => {
    const worker = fakeWorker();
    const waiter = new OperationWaiter(fakeStore({}), 1);
    waiter.attach(worker);
    const refused = new Error('refused by the host');
    const pending = waiter.result('op-1', 10_000);
    worker.end({ id: 'op-1', state: 'failed', reason: 'refused by the host', error: refused });
    await expect(pending).rejects.toBe(refused);
  });

  it('reads an operation another manager ran from the table; a failure there is operation_failed', async () => {
    const rows: Record<string, Partial<OperationRow>> = { 'op-2': { state: 'running', reason: null } };
    const waiter = new OperationWaiter(fakeStore(rows), 1);
    waiter.attach(fakeWorker());
    const pending = waiter.result('op-2', 10_000);
    rows['op-2'] = { state: 'failed', reason: 'the host is gone' };
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OperationFailed);
    expect(err).toMatchObject({ status: 502, code: 'operation_failed', message: 'the host is gone' });
  });

  it('waits for the local worker when it runs the operation, even once the row is terminal', async () => {
    const worker = fakeWorker();
    worker.running.add('op-3');
    const rows: Record<string, Partial<OperationRow>> = { 'op-3': { state: 'succeeded', reason: 'saved' } };
    const waiter = new OperationWaiter(fakeStore(rows), 1);
    waiter.attach(worker);
    const pending = waiter.end('op-3', 10_000);
    const local = { id: 'op-3', state: 'succeeded' as const, reason: 'saved here' };
    worker.end(local);
    expect(await pending).toBe(local);
  });

  it('answers undefined for one still live after the timeout', async () => {
    const waiter = new OperationWaiter(fakeStore({ 'op-4': { state: 'running' } }), 1);
    expect(await waiter.end('op-4', 20)).toBeUndefined();
  });
});
