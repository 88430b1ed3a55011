/** CPU time and identity of one process, from /proc/<pid>/stat. */
export interface ProcCpu {
  /** utime + stime in clock ticks. */
  ticks: number;
  /** Start time in ticks since boot: tells a reused pid from the process seen before. */
  startTime: number;
}

/** Linux reports /proc times in USER_HZ, which is 100 on every architecture the kernel ABI exposes. */
export const CLK_TCK = 100;

/** Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so fields count from the last `)`. */
export function parseProcStat(text: string): ProcCpu {
  const end = text.lastIndexOf(')');
  if (end < 0) throw new Error('not a /proc/<pid>/stat line');
  // After ")": field 3 (state) is index 0, so field N is index N - 3.
  const f = text
    .slice(end + 2)
    .trim()
    .split(/\s+/);
  const num = (n: number) => {
    const v = Number(f[n - 3]);
    if (!Number.isFinite(v)) throw new Error(`/proc stat field ${n} missing`);
    return v;
  };
  return { ticks: num(14) + num(15), startTime: num(22) };
}

/** Resident set size in bytes from /proc/<pid>/status (`VmRSS: N kB`). */
export function parseRssBytes(statusText: string): number | null {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(statusText);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * CPU use between two readings in percent of one core (may exceed 100 for a multi-threaded VMM);
 * null when the readings are not of the same process or no time passed.
 */
export function cpuPercent(
  prev: { cpu: ProcCpu; atMs: number },
  cur: { cpu: ProcCpu; atMs: number },
  clkTck = CLK_TCK,
): number | null {
  if (prev.cpu.startTime !== cur.cpu.startTime) return null;
  const wallS = (cur.atMs - prev.atMs) / 1000;
  if (wallS <= 0) return null;
  const busyS = Math.max(0, cur.cpu.ticks - prev.cpu.ticks) / clkTck;
  return Math.round((busyS / wallS) * 1000) / 10;
}
