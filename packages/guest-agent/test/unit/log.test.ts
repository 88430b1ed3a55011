import { describe, expect, it } from 'vitest';
import { createLogger, logSink } from '../../src/log';

describe('createLogger', () => {
  it('writes one JSON object per line with time, level and message', () => {
    const lines: string[] = [];
    createLogger((l) => lines.push(l)).info('started', { port: 9000 });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 'info', msg: 'started', port: 9000 });
  });

  it('drops fields whose names look secret', () => {
    const lines: string[] = [];
    createLogger((l) => lines.push(l)).warn('x', { token: 's3cr3t', Authorization: 'Bearer s3cr3t', vm_id: 'v' });
    expect(lines[0]).not.toContain('s3cr3t');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ vm_id: 'v' });
  });
});

describe('logSink', () => {
  const stat = (kind: 'fifo' | 'socket' | 'file' | 'chardev') => () => ({
    isFIFO: () => kind === 'fifo',
    isSocket: () => kind === 'socket',
    isFile: () => kind === 'file',
  });

  it('keeps stderr when something collects it: the journal socket, a pipe or a file', () => {
    for (const kind of ['fifo', 'socket', 'file'] as const) {
      const writes: string[] = [];
      const opened: string[] = [];
      logSink({
        fstat: stat(kind),
        openKmsg: () => {
          opened.push(kind);
          return 9;
        },
        write: (_fd, t) => writes.push(t),
      });
      expect(opened).toEqual([]);
      expect(writes).toEqual([]);
    }
  });

  it('writes to the kernel log at debug level when stderr is the console or /dev/null', () => {
    const writes: [number, string][] = [];
    const sink = logSink({ fstat: stat('chardev'), openKmsg: () => 9, write: (fd, t) => writes.push([fd, t]) });
    sink('{"msg":"reported"}\n');
    expect(writes).toEqual([[9, '<15>nqvm-guest-agent: {"msg":"reported"}\n']]);
  });
});
