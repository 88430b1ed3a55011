import type { VmAction, VmState } from '@nqvm/api';
import { InvalidTransition } from '../../domain/errors.ts';

/** User actions: which states allow them and which state they move the VM to at once. */
export const ACTIONS: Record<VmAction | 'delete', { from: readonly VmState[]; to: VmState | null }> = {
  start: { from: ['stopped', 'error'], to: 'starting' },
  stop: { from: ['running', 'paused', 'starting', 'unknown'], to: 'stopping' },
  pause: { from: ['running'], to: 'paused' },
  resume: { from: ['paused'], to: 'running' },
  'ctrl-alt-del': { from: ['running'], to: null },
  delete: {
    from: ['creating', 'starting', 'running', 'paused', 'stopping', 'stopped', 'error', 'unknown'],
    to: 'deleting',
  },
};

/** System transitions (driven by agents and the reconciler), as data. */
export const SYSTEM_TRANSITIONS: Record<VmState, readonly VmState[]> = {
  creating: ['starting', 'stopped', 'error', 'deleting'],
  starting: ['running', 'error', 'stopped', 'stopping', 'deleting', 'unknown'],
  running: ['stopped', 'error', 'unknown', 'starting', 'stopping', 'paused', 'deleting'],
  paused: ['running', 'stopped', 'error', 'unknown', 'stopping', 'deleting'],
  stopping: ['stopped', 'error', 'unknown', 'deleting'],
  // stopping from stopped or error: a VMM the agent still runs for a VM believed down is stopped (reconciler).
  stopped: ['starting', 'deleting', 'stopping'],
  deleting: ['error'],
  error: ['starting', 'stopped', 'deleting', 'stopping'],
  unknown: ['running', 'paused', 'stopped', 'error', 'stopping', 'deleting'],
};

export function assertAction(action: VmAction | 'delete', state: VmState): VmState | null {
  const rule = ACTIONS[action];
  if (!rule.from.includes(state)) throw new InvalidTransition(action, state);
  return rule.to;
}

export function canTransition(from: VmState, to: VmState): boolean {
  return from === to || SYSTEM_TRANSITIONS[from].includes(to);
}
