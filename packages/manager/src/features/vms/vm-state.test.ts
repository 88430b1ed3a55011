import { describe, expect, it } from 'vitest';
import { InvalidTransition } from '../../domain/errors.ts';
import { ACTIONS, assertAction, canTransition } from './vm-state.ts';

describe('VM state machine', () => {
  it('allows the documented user actions and names the target state', () => {
    expect(assertAction('start', 'stopped')).toBe('starting');
    expect(assertAction('stop', 'running')).toBe('stopping');
    expect(assertAction('pause', 'running')).toBe('paused');
    expect(assertAction('resume', 'paused')).toBe('running');
    expect(assertAction('ctrl-alt-del', 'running')).toBeNull();
  });

  it('refuses illegal actions with a 409 that carries the current state', () => {
    for (const [action, rule] of Object.entries(ACTIONS)) {
      for (const state of [
        'creating',
        'starting',
        'running',
        'paused',
        'stopping',
        'stopped',
        'deleting',
        'error',
        'unknown',
      ] as const) {
        if (rule.from.includes(state)) continue;
        try {
          assertAction(action as keyof typeof ACTIONS, state);
          expect.unreachable(`${action} from ${state}`);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidTransition);
          expect((err as InvalidTransition).status).toBe(409);
          expect((err as InvalidTransition).extra).toMatchObject({ state });
        }
      }
    }
  });

  it('never lets a deleted VM come back to life', () => {
    expect(canTransition('deleting', 'running')).toBe(false);
    expect(canTransition('unknown', 'running')).toBe(true);
  });
});
