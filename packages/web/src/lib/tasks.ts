import { ApiError, api, type Operation, type Vm, type VmState } from '@nqvm/api';
import { useSyncExternalStore } from 'react';
import { call, errorMessage } from './api.ts';
import { onLiveEvent } from './live.ts';

/** A long action the user started, followed until the VM reaches where the action leads (or fails). */
export interface Task {
  id: number;
  title: string;
  vmId: string;
  state: 'running' | 'succeeded' | 'failed';
  detail: string;
  startedAt: number;
  endedAt?: number;
}

/** The end of an action: the states it leads to, or `gone` for a delete. */
export type Goal = { states: VmState[] } | { gone: true };

const TIMEOUT_MS = 10 * 60_000;
let tasks: Task[] = [];
let nextId = 1;
const listeners = new Set<() => void>();
const doneListeners = new Set<(t: Task) => void>();

function publish(): void {
  for (const fn of listeners) fn();
}

function finish(id: number, state: 'succeeded' | 'failed', detail: string): void {
  const t = tasks.find((x) => x.id === id);
  if (t?.state !== 'running') return;
  const done = { ...t, state, detail, endedAt: Date.now() };
  tasks = tasks.map((x) => (x.id === id ? done : x));
  publish();
  for (const fn of doneListeners) fn(done);
}

/**
 * Follows a VM after an accepted request: every event about it re-reads the VM; the task succeeds when the VM
 * reaches the goal, fails when it lands in `error` (with the reason) or the goal is not reached in 10 minutes.
 * When the answer named the durable operation it started (`operation_id`), that operation's outcome decides
 * instead: succeeded, or failed/cancelled with its reason, and its step is shown while it runs.
 */
export function trackTask(title: string, vmId: string, goal: Goal, operationId?: string): void {
  const id = nextId++;
  tasks = [{ id, title, vmId, state: 'running' as const, detail: 'accepted', startedAt: Date.now() }, ...tasks].slice(
    0,
    30,
  );
  publish();
  const checkOperation = async (opId: string) => {
    let op: Operation;
    try {
      op = await call(api.operations.get, { params: { id: opId } });
    } catch (err) {
      return finish(id, 'failed', errorMessage(err));
    }
    if (op.state === 'succeeded') return finish(id, 'succeeded', `${op.kind} done`);
    if (op.state === 'failed' || op.state === 'cancelled')
      return finish(id, 'failed', op.reason ?? op.error ?? op.state);
    const detail = `${op.state}: ${op.step}${op.attempts > 1 ? ` (attempt ${op.attempts})` : ''}`;
    tasks = tasks.map((x) => (x.id === id && x.state === 'running' ? { ...x, detail } : x));
    publish();
  };
  const check = async () => {
    if (operationId) return checkOperation(operationId);
    let vm: Vm;
    try {
      vm = await call(api.vms.get, { params: { id: vmId } });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && 'gone' in goal) return finish(id, 'succeeded', 'deleted');
      return finish(id, 'failed', errorMessage(err));
    }
    if ('states' in goal && goal.states.includes(vm.state)) return finish(id, 'succeeded', vm.state);
    if (vm.state === 'error') return finish(id, 'failed', vm.last_error ?? 'the VM is in error');
    tasks = tasks.map((x) => (x.id === id && x.state === 'running' ? { ...x, detail: vm.state } : x));
    publish();
  };
  const off = onLiveEvent((e) => {
    if (e.resource_id === vmId) void check();
  });
  // An operation moves through steps without events; while one runs, its record is read every 2 s as well.
  const poll = operationId ? setInterval(() => void check(), 2000) : undefined;
  const timer = setTimeout(() => finish(id, 'failed', 'no result after 10 minutes'), TIMEOUT_MS);
  const stop = onTaskDone((t) => {
    if (t.id !== id) return;
    off();
    stop();
    clearTimeout(timer);
    clearInterval(poll);
  });
  void check();
}

export function onTaskDone(fn: (t: Task) => void): () => void {
  doneListeners.add(fn);
  return () => doneListeners.delete(fn);
}

export function useTasks(): Task[] {
  return useSyncExternalStore(
    (fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    () => tasks,
  );
}
