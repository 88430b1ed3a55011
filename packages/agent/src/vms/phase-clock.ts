/** Wall-clock milliseconds of a VM boot's phases, for the "vm booted" log line and the boot benchmark. */
export interface PhaseClock {
  /** Runs `fn` and adds its duration to `phase` (phases may overlap when run concurrently). */
  time<T>(phase: string, fn: () => Promise<T>): Promise<T>;
  /** Milliseconds since the clock was made. */
  elapsed(): number;
  phases(): Record<string, number>;
}

export function phaseClock(now: () => number = () => performance.now()): PhaseClock {
  const start = now();
  const spent: Record<string, number> = {};
  const round = (ms: number) => Math.round(ms * 10) / 10;
  return {
    async time(phase, fn) {
      const t = now();
      try {
        return await fn();
      } finally {
        spent[phase] = round((spent[phase] ?? 0) + now() - t);
      }
    },
    elapsed: () => round(now() - start),
    phases: () => ({ ...spent, total: round(now() - start) }),
  };
}
