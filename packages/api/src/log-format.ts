/** Destination pino writes one JSON line at a time to. */
export interface LogDestination {
  write(line: string): void;
}

const LEVELS: Record<number, [name: string, color: number]> = {
  10: ['TRACE', 90],
  20: ['DEBUG', 36],
  30: ['INFO', 32],
  40: ['WARN', 33],
  50: ['ERROR', 31],
  60: ['FATAL', 35],
};
// Fields every line carries that a person at a terminal does not need to read.
const QUIET = new Set(['time', 'level', 'msg', 'pid', 'hostname', 'name', 'reqId', 'err', 'v']);

/**
 * One pino JSON line as a person reads it: `12:03:04.512 INFO  nqvm-agent [req-id] message  key=value …`, an
 * error's stack indented below. A line that is not JSON passes through unchanged.
 */
export function formatLogLine(line: string, color = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof o !== 'object' || o === null) return line;
  const [level, code] = LEVELS[Number(o.level)] ?? [String(o.level ?? ''), 0];
  const paint = (s: string, c: number) => (color && c ? `\x1b[${c}m${s}\x1b[0m` : s);
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const head = [
    time,
    paint(level.padEnd(5), code),
    typeof o.name === 'string' ? paint(o.name, 90) : '',
    o.reqId === undefined ? '' : paint(`[${String(o.reqId)}]`, 90),
    typeof o.msg === 'string' ? o.msg : '',
  ].filter(Boolean);
  const fields = Object.entries(o)
    .filter(([k]) => !QUIET.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  let out = head.join(' ') + (fields.length ? `  ${paint(fields.join(' '), 90)}` : '');
  const err = o.err as { stack?: unknown; message?: unknown } | undefined;
  if (err && typeof err === 'object') {
    const text = typeof err.stack === 'string' ? err.stack : String(err.message ?? JSON.stringify(err));
    out += `\n${text.replace(/^/gm, '    ')}`;
  }
  return `${out}\n`;
}

/**
 * Readable logs when the stream is a terminal, JSON lines otherwise (journald, files, pipes to a collector):
 * undefined means "leave pino's JSON alone".
 */
export function ttyLogDestination(stream: NodeJS.WriteStream = process.stdout): LogDestination | undefined {
  if (!stream.isTTY) return undefined;
  return {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line) stream.write(formatLogLine(line, true));
    },
  };
}
