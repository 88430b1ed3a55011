import { open } from 'node:fs/promises';

export const SCROLLBACK_BYTES = 64 * 1024;

/**
 * The last `max` bytes of `buf`, cut so a viewer never starts mid-character or mid-line: the cut moves past
 * UTF-8 continuation bytes, then to the next line start when one is close (a torn escape sequence stays torn
 * otherwise and garbles the terminal's state).
 */
export function trimScrollback(buf: Buffer, max = SCROLLBACK_BYTES): Buffer {
  if (buf.length <= max) return buf;
  let start = buf.length - max;
  const nl = buf.indexOf(0x0a, start);
  if (nl >= 0 && nl - start < 1024) start = nl + 1;
  else while (start < buf.length && ((buf[start] ?? 0) & 0xc0) === 0x80) start++;
  return buf.subarray(start);
}

/** A bounded byte buffer of recent console output. */
export class Scrollback {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly max = SCROLLBACK_BYTES) {}

  /** Replaces the content (seeding from the console log). */
  reset(data: Buffer): void {
    this.buf = Buffer.from(trimScrollback(data, this.max));
  }

  append(chunk: Buffer): void {
    // Trim only when twice over, so steady output copies the buffer rarely.
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.buf.length > 2 * this.max) this.buf = Buffer.from(trimScrollback(this.buf, this.max));
  }

  snapshot(): Buffer {
    return Buffer.from(trimScrollback(this.buf, this.max));
  }
}

/** The last `max` bytes of a file (the console log); empty when it does not exist yet. */
export async function readTail(path: string, max = SCROLLBACK_BYTES): Promise<Buffer> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  try {
    const { size } = await fh.stat();
    // Read a little more than max so trimming can find a line start.
    const len = Math.min(size, max + 1024);
    const out = Buffer.alloc(len);
    const { bytesRead } = await fh.read(out, 0, len, size - len);
    return trimScrollback(out.subarray(0, bytesRead), max);
  } finally {
    await fh.close();
  }
}
