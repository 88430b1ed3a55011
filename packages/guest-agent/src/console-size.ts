import { readFile } from 'node:fs/promises';
import type { Exec } from './identity';

/** The browser terminal's size, applied to the guest's serial console. */
export interface ConsoleSize {
  cols: number;
  rows: number;
}

const TTY = /^tty[A-Za-z0-9]+$/;
const inRange = (v: unknown, min: number, max: number) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Both fields must be integers within what a terminal can sensibly be (cols 20–500, rows 5–300). */
export function parseConsoleSize(raw: unknown): ConsoleSize | string {
  if (typeof raw !== 'object' || raw === null) return 'body must be a JSON object';
  const { cols, rows } = raw as Record<string, unknown>;
  if (!inRange(cols, 20, 500)) return 'cols must be an integer from 20 to 500';
  if (!inRange(rows, 5, 300)) return 'rows must be an integer from 5 to 300';
  return { cols: cols as number, rows: rows as number };
}

/** The last entry of /sys/class/tty/console/active is the console /dev/console writes to (e.g. ttyS0). */
export function consoleTty(active: string): string | undefined {
  const last = active.trim().split(/\s+/).at(-1) ?? '';
  return TTY.test(last) ? last : undefined;
}

export interface ConsoleSizeDeps {
  exec: Exec;
  readActive?: () => Promise<string>;
}

/** Sets the console tty's window size; the kernel then sends SIGWINCH to its foreground process group. */
export async function applyConsoleSize(size: ConsoleSize, d: ConsoleSizeDeps): Promise<string> {
  const checked = parseConsoleSize(size);
  if (typeof checked === 'string') throw new Error(checked);
  const active = await (d.readActive ?? (() => readFile('/sys/class/tty/console/active', 'utf8')))();
  const tty = consoleTty(active);
  if (!tty) throw new Error(`no usable console tty in ${JSON.stringify(active.trim())}`);
  await d.exec('stty', ['-F', `/dev/${tty}`, 'rows', String(checked.rows), 'cols', String(checked.cols)]);
  return tty;
}
