import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Duplex, PassThrough, pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Unprocessable } from '../../domain/errors.ts';
import { type ImageStore, type Ingested, TooLarge } from './images.store.ts';

export type Compression = 'gzip' | 'xz' | 'zstd';
export type DiskFormat = 'qcow2' | 'vmdk' | 'vhdx';

/** What happened to the bytes on their way in: the hash of the source as given, and how it was unpacked. */
export interface Decoded extends Ingested {
  sourceSha256: string;
  compression?: Compression;
  format?: DiskFormat;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The host commands image intake needs, from argv arrays (never a shell string). */
export interface DiskTools {
  /** Runs to completion; stdout and stderr are kept (bounded). */
  exec(cmd: string, args: readonly string[]): Promise<ExecResult>;
  /** A command as a stream filter (stdin → stdout); a non-zero exit fails the stream with its stderr. */
  filter(cmd: string, args: readonly string[]): Duplex;
}

/** The image is not one nqvm can take: a clear 422 for synchronous sources, the import's error reason for URLs. */
export class ImageFormatInvalid extends Unprocessable {
  constructor(message: string) {
    super('image_format_invalid', message, 'body.source');
  }
}

const XZ = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const QCOW2 = Buffer.from([0x51, 0x46, 0x49, 0xfb]);

export function compressionOf(head: Buffer): Compression | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 6).equals(XZ)) return 'xz';
  if (head.subarray(0, 4).equals(ZSTD)) return 'zstd';
  return undefined;
}

/** A disk format qemu-img converts, by its magic; a VMDK descriptor (text naming other files) is refused. */
export function diskFormatOf(head: Buffer): DiskFormat | undefined {
  if (head.subarray(0, 4).equals(QCOW2)) return 'qcow2';
  if (head.subarray(0, 4).toString('latin1') === 'KDMV') return 'vmdk';
  if (head.subarray(0, 8).toString('latin1') === 'vhdxfile') return 'vhdx';
  if (head.subarray(0, 21).toString('latin1') === '# Disk DescriptorFile')
    throw new ImageFormatInvalid('a VMDK descriptor refers to other files: give a monolithic or stream-optimized VMDK');
  return undefined;
}

const DECOMPRESS: Record<Exclude<Compression, 'gzip'>, [string, string[]]> = {
  xz: ['xz', ['-d', '-c', '-q']],
  zstd: ['zstd', ['-d', '-c', '-q']],
};

/**
 * Passes `raw` on, decompressed while streaming when it starts with a gzip, xz or zstd header. `onSource` sees
 * every byte as given (for its hash and progress); `found` learns the compression once the header is read.
 */
export function decoding(
  raw: Readable,
  tools: DiskTools,
  onSource: (chunk: Buffer) => void,
  found: (c: Compression | undefined) => void,
): Readable {
  async function* decoded(): AsyncGenerator<Buffer> {
    const it = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    let head = Buffer.alloc(0);
    let ended = false;
    while (head.length < XZ.length) {
      const r = await it.next();
      if (r.done) {
        ended = true;
        break;
      }
      onSource(r.value);
      head = Buffer.concat([head, r.value]);
    }
    const compression = compressionOf(head);
    found(compression);
    let sourceFailed = false;
    async function* rest(): AsyncGenerator<Buffer> {
      try {
        if (head.length) yield head;
        while (!ended) {
          const r = await it.next();
          if (r.done) return;
          onSource(r.value);
          yield r.value;
        }
      } catch (err) {
        sourceFailed = true;
        throw err;
      } finally {
        await it.return?.();
      }
    }
    if (!compression) return yield* rest();
    const [cmd, args] = compression === 'gzip' ? [] : DECOMPRESS[compression];
    const dec = cmd ? tools.filter(cmd, args ?? []) : createGunzip();
    // pipeline() destroys both sides on any error, and iterating `dec` rethrows it here.
    pipeline(Readable.from(rest()), dec, () => {});
    try {
      for await (const chunk of dec) yield chunk as Buffer;
    } catch (err) {
      if (sourceFailed || err instanceof TooLarge || err instanceof ImageFormatInvalid) throw err;
      throw new ImageFormatInvalid(`the ${compression} stream is damaged: ${err instanceof Error ? err.message : err}`);
    }
  }
  return Readable.from(decoded(), { objectMode: false });
}

async function headOf(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

interface QemuImgInfo {
  'virtual-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'format-specific'?: { type?: string; data?: { 'data-file'?: string; extents?: { filename?: string }[] } };
}

/**
 * Converts a qcow2/VMDK/VHDX file to raw. `qemu-img info` comes first because it never opens a backing file, so
 * an image naming one (or an external data file or extent, which would make qemu-img read host files) is refused
 * before `check` or `convert` would open it; then `check` (leaked clusters are harmless), then `convert`.
 */
export async function convertToRaw(
  tools: DiskTools,
  src: string,
  format: DiskFormat,
  dest: string,
  limit: number,
): Promise<void> {
  const info = await tools.exec('qemu-img', ['info', '--output=json', '-f', format, src]);
  if (info.code !== 0) throw new ImageFormatInvalid(`not a valid ${format} image: ${firstLine(info.stderr)}`);
  const parsed = JSON.parse(info.stdout) as QemuImgInfo;
  const backing = parsed['backing-filename'] ?? parsed['full-backing-filename'];
  if (backing !== undefined)
    throw new ImageFormatInvalid(`the ${format} image has a backing file (${backing}): give a self-contained image`);
  const data = parsed['format-specific']?.data;
  if (data?.['data-file'] !== undefined)
    throw new ImageFormatInvalid(`the ${format} image has an external data file: give a self-contained image`);
  if (data?.extents?.some((e) => e.filename !== undefined && e.filename !== src))
    throw new ImageFormatInvalid(`the ${format} image has extents in other files: give a self-contained image`);
  const size = parsed['virtual-size'] ?? 0;
  if (size > limit) throw new TooLarge(limit);
  const check = await tools.exec('qemu-img', ['check', '-q', '-f', format, src]);
  // 0 clean, 3 leaked clusters only (wasted space, data intact), 63 the format has no check.
  if (![0, 3, 63].includes(check.code))
    throw new ImageFormatInvalid(`qemu-img check found the ${format} image damaged: ${firstLine(check.stderr)}`);
  const conv = await tools.exec('qemu-img', ['convert', '-q', '-f', format, '-O', 'raw', src, dest]);
  if (conv.code !== 0)
    throw new ImageFormatInvalid(`qemu-img could not convert the ${format} image: ${firstLine(conv.stderr)}`);
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

/**
 * Stores `source` as a raw image: decompressed while streaming, converted from qcow2/VMDK/VHDX when it is one.
 * `limit` bounds the bytes given and the bytes stored; `onSourceBytes` counts the bytes given (progress).
 */
export async function ingestImage(
  store: ImageStore,
  tools: DiskTools,
  source: Readable,
  opts: { limit: number; onSourceBytes?: (done: number) => void },
): Promise<Decoded> {
  const srcHash = createHash('sha256');
  let given = 0;
  let compression: Compression | undefined;
  const file = await store.ingest(source, {
    limit: opts.limit,
    decode: (raw) =>
      decoding(
        raw,
        tools,
        (chunk) => {
          given += chunk.length;
          if (given > opts.limit) throw new TooLarge(opts.limit);
          srcHash.update(chunk);
          opts.onSourceBytes?.(given);
        },
        (c) => {
          compression = c;
        },
      ),
  });
  const sourceSha256 = srcHash.digest('hex');
  let format: DiskFormat | undefined;
  try {
    format = diskFormatOf(await headOf(file.tmp));
  } catch (err) {
    await store.discard(file.tmp);
    throw err;
  }
  if (!format) return { ...file, sourceSha256, ...(compression ? { compression } : {}) };
  const raw = store.tempPath();
  try {
    await convertToRaw(tools, file.tmp, format, raw, opts.limit);
  } catch (err) {
    await store.discard(raw);
    throw err;
  } finally {
    await store.discard(file.tmp);
  }
  return { ...(await store.hashTemp(raw)), sourceSha256, format, ...(compression ? { compression } : {}) };
}

const KEEP = 64 * 1024;

export const systemDiskTools: DiskTools = {
  exec(cmd, args) {
    return new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], shell: false });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let outLen = 0;
      child.stdout.on('data', (b: Buffer) => {
        outLen += b.length;
        if (outLen <= 4 * KEEP) out.push(b);
      });
      child.stderr.on('data', (b: Buffer) => {
        if (err.length < 16) err.push(b);
      });
      child.on('error', reject);
      child.on('close', (code) =>
        resolve({
          code: code ?? -1,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(err).toString('utf8').slice(0, KEEP),
        }),
      );
    });
  },
  filter(cmd, args) {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    const err: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => {
      if (err.length < 16) err.push(b);
    });
    const out = new PassThrough();
    const exited = new Promise<number>((r) => child.once('close', (code) => r(code ?? -1)));
    child.stdout.pipe(out, { end: false });
    child.stdout.once('end', () => {
      void exited.then((code) => {
        if (code === 0) out.end();
        else out.destroy(new Error(`${cmd} exited ${code}: ${firstLine(Buffer.concat(err).toString('utf8'))}`));
      });
    });
    child.once('error', (e) => out.destroy(e));
    // A write after the command gave up (corrupt input) is its exit status's business, not an EPIPE.
    child.stdin.on('error', () => undefined);
    const d = Duplex.from({ writable: child.stdin, readable: out });
    d.once('close', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    return d;
  },
};
