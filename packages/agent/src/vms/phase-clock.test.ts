import { describe, expect, it } from 'vitest';
import { phaseClock } from './phase-clock.ts';

describe('phaseClock', () => {
  it('adds up each phase, also when a step fails, and reports the total since it was made', async () => {
    let t = 1000;
    const clock = phaseClock(() => t);
    await clock.time('disk', async () => {
      t += 40;
    });
    await clock.time('disk', async () => {
      t += 2;
    });
    await expect(
      clock.time('network', async () => {
        t += 7;
        throw new Error('no bridge');
      }),
    ).rejects.toThrow('no bridge');
    t += 1;
    expect(clock.elapsed()).toBe(50);
    expect(clock.phases()).toEqual({ disk: 42, network: 7, total: 50 });
  });
});
