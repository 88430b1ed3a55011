import { describe, expect, it } from 'vitest';
import { InvalidTransition } from '../../domain/errors.ts';
import { ACTIONS, assertAction, canTransition, SYSTEM_TRANSITIONS } from './vm-state.ts';
import { IllegalTransition, VmStateMachine } from './vm-state-machine.ts';

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

describe('every VM state transition', () => {
  const states = [
    'creating',
    'starting',
    'running',
    'paused',
    'stopping',
    'stopped',
    'deleting',
    'error',
    'unknown',
  ] as const;
  const allowed = new Set(Object.entries(SYSTEM_TRANSITIONS).flatMap(([f, tos]) => tos.map((to) => `${f}->${to}`)));
  for (const from of states)
    for (const to of states)
      it(`${from} -> ${to}: ${from === to || allowed.has(`${from}->${to}`) ? 'allowed' : 'refused'}`, async () => {
        const legal = from === to || allowed.has(`${from}->${to}`);
        expect(canTransition(from, to)).toBe(legal);
        // The choke point refuses an illegal change before it touches the database.
        let reached = false;
        const db = {
          transaction: async () => {
            reached = true;
            return undefined; // as if the VM had moved on meanwhile
          },
        };
        const machine = new VmStateMachine(db as never, {} as never, {} as never);
        const attempt = machine.change({ vmId: 'vm', from: [from], to });
        if (legal) await expect(attempt).resolves.toBeUndefined();
        else await expect(attempt).rejects.toThrow(IllegalTransition);
        expect(reached).toBe(legal);
      });

  it('every user action moves only along the transition table', () => {
    for (const [action, rule] of Object.entries(ACTIONS))
      for (const from of rule.from)
        if (rule.to !== null) expect(canTransition(from, rule.to), `${action} from ${from}`).toBe(true);
  });
});
