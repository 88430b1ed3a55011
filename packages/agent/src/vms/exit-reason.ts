import { open } from 'node:fs/promises';

export interface ExitReason {
  exit_code: number | null;
  signal: string | null;
}

async function readFrom(path: string, offset: number, max = 256 * 1024): Promise<string> {
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      // A log rotated since the launch (logs/vm-logs.ts) is shorter than the offset: what is left is all since then.
      const start = Math.max(size < offset ? 0 : offset, size - max);
      if (size <= start) return '';
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch {
    return '';
  }
}

/**
 * A detached VMM is not our child to waitpid, so the reason comes from its logs written since launch:
 * the guest kernel's power-off/reboot line (a clean exit), a panic, or QEMU's "terminating on signal".
 */
export async function exitReason(consoleLog: string, consoleOffset: number, vmmLog: string, vmmOffset: number) {
  const out = await readFrom(consoleLog, consoleOffset);
  if (/Kernel panic/.test(out)) return { exit_code: null, signal: 'guest_panic' } satisfies ExitReason;
  if (/reboot: (Power down|Restarting system|System halted)/.test(out))
    return { exit_code: 0, signal: null } satisfies ExitReason;
  const vmm = await readFrom(vmmLog, vmmOffset);
  const sig = /terminating on signal (\d+)/.exec(vmm)?.[1];
  if (sig) return { exit_code: null, signal: signalName(Number(sig)) } satisfies ExitReason;
  return { exit_code: null, signal: 'unknown' } satisfies ExitReason;
}

function signalName(n: number): string {
  const names: Record<number, string> = { 1: 'SIGHUP', 2: 'SIGINT', 9: 'SIGKILL', 15: 'SIGTERM' };
  return names[n] ?? `signal ${n}`;
}
