import { fstatSync, openSync, type Stats, writeSync } from 'node:fs';

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const SECRET_KEY = /token|authorization|password|secret/i;

/** One JSON object per line; keys that look secret are dropped rather than trusted to callers. */
export function createLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const emit = (level: string, msg: string, fields: LogFields = {}): void => {
    const record: LogFields = { time: new Date().toISOString(), level, msg };
    for (const [key, value] of Object.entries(fields)) {
      if (!SECRET_KEY.test(key)) record[key] = value;
    }
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
  };
}

export interface SinkDeps {
  fstat?: (fd: number) => Pick<Stats, 'isFIFO' | 'isSocket' | 'isFile'>;
  openKmsg?: () => number;
  write?: (fd: number, text: string) => void;
}

/**
 * Where log lines go. Stderr when something collects it (the journal's socket, a pipe, a file). When stderr is a
 * terminal or /dev/null — busybox init runs respawn entries on the serial console — lines go to the kernel log at
 * debug level instead (`dmesg` shows them), so they never land in the middle of a login prompt or a shell.
 */
export function logSink(deps: SinkDeps = {}): (line: string) => void {
  const write = deps.write ?? ((fd, text) => writeSync(fd, text));
  const toStderr = (line: string) => process.stderr.write(line);
  try {
    const st = (deps.fstat ?? fstatSync)(2);
    if (st.isFIFO() || st.isSocket() || st.isFile()) return toStderr;
    const kmsg = (deps.openKmsg ?? (() => openSync('/dev/kmsg', 'w')))();
    // <15>: facility user, level debug — below every default console log level.
    return (line) => {
      try {
        write(kmsg, `<15>nqvm-guest-agent: ${line}`);
      } catch {
        toStderr(line);
      }
    };
  } catch {
    return toStderr;
  }
}
