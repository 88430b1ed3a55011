import type { OperationKind } from '@nqvm/api';
import { describe, expect, it } from 'vitest';
import { assertComplete, MissingOperationHandler, type OperationHandler, Retryable } from './operations.catalog.ts';
import type { Ending, OperationRow, OperationStore } from './operations.repository.ts';
import { OperationWorker } from './operations.worker.ts';

/** The table's rules in memory: due = queued past its backoff or running past its lease; one live op per VM at a time. */
class FakeStore implements OperationStore {
  rows: OperationRow[] = [];
  private seq = 0;

  add(kind: OperationKind, vmId: string, over: Partial<OperationRow> = {}): OperationRow {
    const at = new Date(0);
    const row: OperationRow = {
      id: `op-${++this.seq}`,
      seq: this.seq,
      kind,
      vmId,
      step: 'begin',
      state: 'queued',
      input: {},
      actor: 'user:test',
      attempts: 0,
      runAfter: at,
      leaseOwner: null,
      leaseExpiresAt: null,
      error: null,
      reason: null,
      createdAt: at,
      updatedAt: at,
      finishedAt: null,
      ...over,
    };
    this.rows.push(row);
    return row;
  }

  async claim(owner: string, now: Date, leaseUntil: Date, limit: number) {
    const live = (r: OperationRow) => r.state === 'queued' || r.state === 'running';
    const due = this.rows.filter(
      (r) =>
        ((r.state === 'queued' && r.runAfter <= now) ||
          (r.state === 'running' && r.leaseExpiresAt !== null && r.leaseExpiresAt < now)) &&
        !this.rows.some((e) => e.vmId === r.vmId && e.seq < r.seq && live(e)),
    );
    return due.slice(0, limit).map((r) => {
      Object.assign(r, { state: 'running', leaseOwner: owner, leaseExpiresAt: leaseUntil, attempts: r.attempts + 1 });
      return { ...r };
    });
  }

  private held(id: string, owner: string) {
    return this.rows.find((r) => r.id === id && r.state === 'running' && r.leaseOwner === owner);
  }

  async renew(id: string, owner: string, leaseUntil: Date) {
    const r = this.held(id, owner);
    if (r) r.leaseExpiresAt = leaseUntil;
    return !!r;
  }

  async step(id: string, owner: string, step: string) {
    const r = this.held(id, owner);
    if (r) r.step = step;
    return !!r;
  }

  async retry(id: string, owner: string, runAfter: Date, error: string) {
    const r = this.held(id, owner);
    if (r) Object.assign(r, { state: 'queued', runAfter, error, leaseOwner: null, leaseExpiresAt: null });
    return !!r;
  }

  async finish(e: Ending, now: Date) {
    const r = this.held(e.id, e.owner);
    if (r)
      Object.assign(r, {
        state: e.state,
        reason: e.reason,
        error: e.error ?? r.error,
        finishedAt: now,
        leaseOwner: null,
      });
    return !!r;
  }

  async get(id: string) {
    return this.rows.find((r) => r.id === id);
  }
}

const quietLog = { error: () => {}, warn: () => {}, info: () => {} };

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => new Date(t),
    advance: (ms: number) => {
      t += ms;
    },
  };
}

function handlers(over: Partial<Record<OperationKind, OperationHandler>>): Record<OperationKind, OperationHandler> {
  const noop: OperationHandler = { run: async () => ({ state: 'succeeded', reason: 'done' }) };
  return {
    create: noop,
    start: noop,
    restart: noop,
    stop: noop,
    delete: noop,
    instantiate: noop,
    snapshot: noop,
    snapshot_delete: noop,
    device: noop,
    clone: noop,
    ...over,
  };
}

describe('operation worker', () => {
  it('runs a queued operation and ends it with its handler reason', async () => {
    const store = new FakeStore();
    const op = store.add('start', 'vm-1');
    const c = clock();
    const w = new OperationWorker({ store, handlers: handlers({}), owner: 'm1', log: quietLog, now: c.now });
    await w.tick();
    expect(store.rows[0]).toMatchObject({ id: op.id, state: 'succeeded', reason: 'done', attempts: 1 });
  });

  it('runs one VM’s operations in order and different VMs side by side', async () => {
    const store = new FakeStore();
    const order: string[] = [];
    const log = (name: string): OperationHandler => ({
      run: async ({ op }) => {
        order.push(`${name}:${op.vmId}`);
        return { state: 'succeeded', reason: name };
      },
    });
    store.add('create', 'a');
    store.add('delete', 'a');
    store.add('create', 'b');
    const c = clock();
    const w = new OperationWorker({
      store,
      handlers: handlers({ create: log('create'), delete: log('delete') }),
      owner: 'm1',
      log: quietLog,
      now: c.now,
    });
    await w.tick();
    expect(order).toEqual(['create:a', 'create:b']);
    await w.tick();
    expect(order).toEqual(['create:a', 'create:b', 'delete:a']);
    expect(store.rows.map((r) => r.state)).toEqual(['succeeded', 'succeeded', 'succeeded']);
  });

  it('retries a retryable error after a growing backoff, then fails with a reason and the handler settles the VM', async () => {
    const store = new FakeStore();
    store.add('stop', 'vm-1');
    const c = clock();
    const settled: string[] = [];
    let calls = 0;
    const w = new OperationWorker({
      store,
      handlers: handlers({
        stop: {
          run: async () => {
            calls++;
            throw new Retryable('host agent unreachable');
          },
          failed: async (_op, reason) => {
            settled.push(reason);
          },
        },
      }),
      owner: 'm1',
      log: quietLog,
      now: c.now,
      maxAttempts: 3,
    });
    await w.tick();
    expect(store.rows[0]).toMatchObject({ state: 'queued', attempts: 1, error: 'host agent unreachable' });
    await w.tick(); // backoff not over: nothing runs
    expect(calls).toBe(1);
    c.advance(500);
    await w.tick();
    expect(store.rows[0]).toMatchObject({ state: 'queued', attempts: 2 });
    c.advance(999);
    await w.tick();
    expect(calls).toBe(2);
    c.advance(1);
    await w.tick();
    expect(calls).toBe(3);
    expect(store.rows[0]).toMatchObject({ state: 'failed', attempts: 3 });
    expect(store.rows[0]?.reason).toBe('gave up after 3 attempts: host agent unreachable');
    expect(settled).toEqual(['gave up after 3 attempts: host agent unreachable']);
  });

  it('fails at once on an error that is not retryable', async () => {
    const store = new FakeStore();
    store.add('create', 'vm-1');
    const w = new OperationWorker({
      store,
      handlers: handlers({
        create: {
          run: async () => {
            throw new Error('rootfs: not an ext4 image');
          },
        },
      }),
      owner: 'm1',
      log: quietLog,
      now: clock().now,
    });
    await w.tick();
    expect(store.rows[0]).toMatchObject({ state: 'failed', reason: 'rootfs: not an ext4 image', attempts: 1 });
  });

  it('resumes an operation whose claimer died once its lease expires, from the step it reached', async () => {
    const store = new FakeStore();
    const c = clock();
    store.add('delete', 'vm-1', {
      state: 'running',
      step: 'forget',
      attempts: 1,
      leaseOwner: 'dead-manager',
      leaseExpiresAt: new Date(c.now().getTime() + 10_000),
    });
    const steps: string[] = [];
    const w = new OperationWorker({
      store,
      handlers: handlers({
        delete: {
          run: async ({ op }) => {
            steps.push(op.step);
            return { state: 'succeeded', reason: 'deleted' };
          },
        },
      }),
      owner: 'm2',
      log: quietLog,
      now: c.now,
    });
    await w.tick();
    expect(steps).toEqual([]); // the lease still holds
    c.advance(10_001);
    await w.tick();
    expect(steps).toEqual(['forget']);
    expect(store.rows[0]).toMatchObject({ state: 'succeeded', attempts: 2 });
  });

  it('records each step, and a step after another manager took the operation over stops this run', async () => {
    const store = new FakeStore();
    store.add('create', 'vm-1');
    const w = new OperationWorker({
      store,
      handlers: handlers({
        create: {
          run: async (ctx) => {
            await ctx.step('agent');
            const row = store.rows[0]!;
            expect(row.step).toBe('agent');
            row.leaseOwner = 'm2'; // m2 claimed it after m1's lease lapsed
            await ctx.step('record');
            return { state: 'succeeded', reason: 'never reached' };
          },
        },
      }),
      owner: 'm1',
      log: quietLog,
      now: clock().now,
    });
    await w.tick();
    expect(store.rows[0]).toMatchObject({ state: 'running', leaseOwner: 'm2', step: 'agent' });
  });

  it('tells a local waiter how the operation ended', async () => {
    const store = new FakeStore();
    const op = store.add('stop', 'vm-1');
    const w = new OperationWorker({
      store,
      handlers: handlers({ stop: { run: async () => ({ state: 'cancelled', reason: 'the VM is stopped' }) } }),
      owner: 'm1',
      log: quietLog,
      now: clock().now,
    });
    const waited = w.waitLocal(op.id, 60_000);
    await w.tick();
    expect(await waited).toMatchObject({ id: op.id, state: 'cancelled', reason: 'the VM is stopped' });
  });
});

describe('operation catalogue', () => {
  it('refuses to start when a kind has no handler', () => {
    const some = handlers({});
    delete (some as Partial<typeof some>).clone;
    expect(() => assertComplete(some)).toThrow(MissingOperationHandler);
    expect(() => assertComplete(some)).toThrow(/clone/);
    expect(assertComplete(handlers({}))).toBeTruthy();
  });
});
