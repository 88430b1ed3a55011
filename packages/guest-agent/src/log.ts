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
