/** A streaming reader of POSIX tar (ustar, pax and GNU long names), enough for OCI image layers. */

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  size: number;
  linkname: string;
}

export class TarError extends Error {
  constructor(message: string) {
    super(`the layer is not a valid tar archive: ${message}`);
    this.name = 'TarError';
  }
}

/** Pulls exact byte counts out of an async stream of chunks. */
class Bytes {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.it.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, next.value]) : next.value;
    return true;
  }

  /** Exactly n bytes, or undefined at a clean end of stream. */
  async exact(n: number): Promise<Buffer | undefined> {
    while (this.buf.length < n) if (!(await this.fill())) break;
    if (this.buf.length === 0) return undefined;
    if (this.buf.length < n) throw new TarError('it ends in the middle of a block');
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** n bytes as they arrive, in chunks. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) throw new TarError('it ends in the middle of a file');
      const part = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(part.length);
      left -= part.length;
      yield part;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n));
  }

  /** Reads to the end of the stream (the padding after an archive's end), so the whole stream is consumed. */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.fill()) this.buf = Buffer.alloc(0);
  }
}

function text(b: Buffer, start: number, len: number): string {
  const field = b.subarray(start, start + len);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

/** Octal, or GNU base-256 when the first byte's high bit is set. */
function num(b: Buffer, start: number, len: number): number {
  const field = b.subarray(start, start + len);
  if (field[0]! & 0x80) {
    let v = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + field[i]!;
    return v;
  }
  const s = text(b, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad number field ${JSON.stringify(s)}`);
  return Number.parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  return sum === num(h, 148, 8);
}

/** `len key=value\n` records. */
function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < b.length) {
    const space = b.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(b.subarray(at, space).toString('ascii'));
    if (!Number.isInteger(len) || len <= 0 || at + len > b.length) throw new TarError('bad pax record');
    const rec = b.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    at += len;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '5': 'dir',
  '2': 'symlink',
  '1': 'hardlink',
};
const pad = (n: number) => (512 - (n % 512)) % 512;
const META_LIMIT = 1 << 20;

/**
 * Calls `onEntry` for every entry in order; its body must be read through (or not at all: what is left is skipped).
 * Reads the source to its end. Throws TarError on a malformed archive.
 */
export async function readTar(
  source: AsyncIterable<Buffer>,
  onEntry: (entry: TarEntry, body: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  const bytes = new Bytes(source[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await bytes.exact(512);
    if (!h) return;
    if (h.every((x) => x === 0)) return bytes.drain();
    if (!checksumOk(h)) throw new TarError('a header checksum is wrong');
    const flag = String.fromCharCode(h[156]!);
    const size = num(h, 124, 12);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > META_LIMIT) throw new TarError('an extended header is too large');
      const data = (await bytes.exact(size + pad(size))) ?? Buffer.alloc(0);
      const body = data.subarray(0, size);
      if (flag === 'x') pax = { ...pax, ...parsePax(body) };
      else if (flag === 'L') longName = text(body, 0, body.length);
      else if (flag === 'K') longLink = text(body, 0, body.length);
      continue;
    }
    const prefix = text(h, 257, 6).startsWith('ustar') ? text(h, 345, 155) : '';
    const name = text(h, 0, 100);
    const entry: TarEntry = {
      path: pax.path ?? longName ?? (prefix ? `${prefix}/${name}` : name),
      type: TYPES[flag] ?? 'other',
      mode: num(h, 100, 8) & 0o7777,
      uid: pax.uid !== undefined ? Number(pax.uid) : num(h, 108, 8),
      gid: pax.gid !== undefined ? Number(pax.gid) : num(h, 116, 8),
      mtime: pax.mtime !== undefined ? Math.floor(Number(pax.mtime)) : num(h, 136, 12),
      size: pax.size !== undefined ? Number(pax.size) : size,
      linkname: pax.linkpath ?? longLink ?? text(h, 157, 100),
    };
    pax = {};
    longName = undefined;
    longLink = undefined;
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new TarError('a size is out of range');
    const dataSize = entry.type === 'file' ? entry.size : flag === '5' || flag === '2' || flag === '1' ? 0 : entry.size;
    let read = 0;
    const body = bytes.take(dataSize);
    const counted = (async function* () {
      for await (const chunk of body) {
        read += chunk.length;
        yield chunk;
      }
    })();
    await onEntry(entry, counted);
    if (read < dataSize) await bytes.skip(dataSize - read);
    await bytes.skip(pad(dataSize));
  }
}
