import { open, stat } from 'node:fs/promises';

const CHUNK = 64 * 1024;
/** Never read more than this much backwards for a tail, whatever the line count. */
const MAX_TAIL_BYTES = 4 * 1024 * 1024;

/** The last `lines` lines of a file and the offset they end at (a follow continues from there). */
export async function tailLines(path: string, lines: number): Promise<{ text: string; end: number }> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    let start = size;
    let buf = Buffer.alloc(0);
    while (start > 0 && size - start < MAX_TAIL_BYTES) {
      const len = Math.min(CHUNK, start);
      start -= len;
      const chunk = Buffer.alloc(len);
      await fh.read(chunk, 0, len, start);
      buf = Buffer.concat([chunk, buf]);
      let count = 0;
      for (const b of buf) if (b === 10) count++;
      if (count > lines) break;
    }
    const all = buf.toString('utf8').split('\n');
    const trailing = all[all.length - 1] === '' ? all.pop() : undefined;
    const kept = all.slice(-lines).join('\n');
    return { text: trailing === undefined ? kept : `${kept}\n`, end: size };
  } finally {
    await fh.close();
  }
}

/** Yields what is appended to `path` after `from`, polling, until `signal` aborts; a truncated file restarts at 0. */
export async function* follow(path: string, from: number, signal: AbortSignal, pollMs = 250): AsyncGenerator<Buffer> {
  let offset = from;
  while (!signal.aborted) {
    const size = await stat(path).then(
      (s) => s.size,
      () => offset,
    );
    if (size < offset) offset = 0;
    if (size > offset) {
      const fh = await open(path, 'r');
      try {
        const len = Math.min(size - offset, 1024 * 1024);
        const chunk = Buffer.alloc(len);
        const { bytesRead } = await fh.read(chunk, 0, len, offset);
        offset += bytesRead;
        yield chunk.subarray(0, bytesRead);
      } finally {
        await fh.close();
      }
      continue;
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, pollMs);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
