import { describe, expect, it } from 'vitest';
import { formatLogLine, ttyLogDestination } from '../../src/log-format.ts';

describe('log lines at a terminal', () => {
  it('reads as time, level, name, request id, message and the other fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 11, 3, 9, 1, 2, 345),
      pid: 7,
      hostname: 'h',
      name: 'nqvm-agent',
      reqId: 'r-1',
      msg: 'heartbeat failed',
      vm_id: 'v1',
      attempt: 2,
    });
    expect(formatLogLine(line)).toBe('09:01:02.345 WARN  nqvm-agent [r-1] heartbeat failed  vm_id=v1 attempt=2\n');
  });

  it("puts an error's stack under the line, and passes a line that is not JSON through", () => {
    const err = { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.ts:1:1)' };
    expect(formatLogLine(JSON.stringify({ level: 50, time: 0, msg: 'failed', err }))).toBe(
      '00:00:00.000 ERROR failed\n    Error: boom\n        at x (y.ts:1:1)\n',
    );
    expect(formatLogLine('plain text')).toBe('plain text');
  });

  it('leaves JSON logs alone when the stream is not a terminal', () => {
    expect(ttyLogDestination({ isTTY: false } as NodeJS.WriteStream)).toBeUndefined();
    const written: string[] = [];
    const tty = { isTTY: true, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    ttyLogDestination(tty)?.write(`${JSON.stringify({ level: 30, time: 0, msg: 'hi' })}\n`);
    expect(written).toEqual(['00:00:00.000 \x1b[32mINFO \x1b[0m hi\n']);
  });
});
