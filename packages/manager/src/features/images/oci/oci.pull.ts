import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Duplex, PassThrough, type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { CommandRunner } from '../images.exec.ts';
import type { ImageStore, Ingested } from '../images.store.ts';
import type { Compression, Layer } from './oci.manifest.ts';
import { type RegistryClient, RegistryUnavailable } from './oci.registry.ts';
import { readTar } from './oci.tar.ts';
import { LayerApplier } from './oci.unpack.ts';

export interface BuildDeps {
  store: ImageStore;
  runner: CommandRunner;
  /** Compressed bytes received so far over all layers, and their total. */
  onProgress: (done: number, total: number) => void;
  /** Called on every chunk: an idle timer is kicked here. */
  onData?: () => void;
  signal: AbortSignal;
  /** Limit on the compressed layers together, and on the unpacked files together. */
  limit: number;
}

const MiB = 1024 * 1024;

/** zstd layers: Node 20's zlib has no zstd, so Debian's `zstd` decompresses (argv, never a shell). */
function zstdStream(): Duplex {
  const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
  const err: Buffer[] = [];
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  let exited = false;
  child.on('error', (e) => out.destroy(e));
  child.on('close', (code) => {
    exited = true;
    if (code === 0) out.end();
    else out.destroy(new Error(`zstd exited ${code}: ${Buffer.concat(err).toString('utf8').trim()}`));
  });
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  duplex.on('close', () => {
    if (!exited) child.kill('SIGKILL');
  });
  return duplex;
}

function decompressor(c: Compression): Duplex {
  if (c === 'gzip') return createGunzip();
  if (c === 'zstd') return zstdStream();
  return new PassThrough();
}

/** Streams one layer: hashing and counting the bytes as sent, unpacking them as they arrive. */
async function applyLayer(
  client: RegistryClient,
  layer: Layer,
  applier: LayerApplier,
  signal: AbortSignal,
  count: (n: number) => void,
): Promise<void> {
  const res = await client.get(`blobs/${layer.digest}`);
  if (res.status !== 200) {
    res.body.resume();
    throw new RegistryUnavailable(`the registry answered ${res.status} for layer ${layer.digest}`);
  }
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      if (size > layer.size) return cb(new Error(`layer ${layer.digest} is larger than its manifest says`));
      hash.update(chunk);
      count(chunk.length);
      cb(null, chunk);
    },
  });
  const unpacked = decompressor(layer.compression);
  applier.beginLayer();
  const onAbort = () => res.body.destroy(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.all([
      pipeline(res.body as Readable, meter, unpacked),
      readTar(unpacked as AsyncIterable<Buffer>, (entry, body) => applier.entry(entry, body)),
    ]);
  } catch (err) {
    res.body.destroy();
    unpacked.destroy();
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (size !== layer.size) throw new Error(`layer ${layer.digest} is ${size} bytes, its manifest says ${layer.size}`);
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== layer.digest) throw new Error(`layer digest mismatch: expected ${layer.digest}, got ${got}`);
  await applier.endLayer();
}

/** Bytes and inodes a tree needs, to size its filesystem. */
async function measure(dir: string): Promise<{ bytes: number; inodes: number }> {
  let bytes = 0;
  let inodes = 1;
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const st = await lstat(p);
    inodes++;
    bytes += Math.max(st.blocks * 512, 4096);
    if (st.isDirectory()) {
      const sub = await measure(p);
      bytes += sub.bytes;
      inodes += sub.inodes - 1;
    }
  }
  return { bytes, inodes };
}

/** What a VM's boot needs in any rootfs (container images often leave these to their runtime). */
const VM_DIRS: Array<[string, number]> = [
  ['dev', 0o755],
  ['proc', 0o555],
  ['sys', 0o555],
  ['run', 0o755],
  ['tmp', 0o1777],
  ['etc', 0o755],
];

/**
 * Pulls every layer in order into a scratch tree (digests and sizes checked), then makes an ext4 image of it with
 * `mkfs.ext4 -d` (no loop mount), sized to fit with room to spare. The scratch tree is always removed.
 */
export async function buildRootfs(client: RegistryClient, layers: Layer[], deps: BuildDeps): Promise<Ingested> {
  const total = layers.reduce((n, l) => n + l.size, 0);
  if (total > deps.limit) throw new Error(`the layers are larger than the limit of ${deps.limit} bytes`);
  const tree = deps.store.tempPath();
  await mkdir(tree, { mode: 0o755 });
  let done = 0;
  deps.onProgress(0, total);
  try {
    const applier = new LayerApplier(tree, { limit: deps.limit });
    for (const layer of layers) {
      deps.signal.throwIfAborted();
      await applyLayer(client, layer, applier, deps.signal, (n) => {
        done += n;
        deps.onData?.();
        deps.onProgress(done, total);
      });
    }
    deps.signal.throwIfAborted();
    for (const [d, mode] of VM_DIRS) {
      const p = join(tree, d);
      if (!(await lstat(p).catch(() => undefined))) await mkdir(p, { mode });
    }
    const { bytes, inodes } = await measure(tree);
    const inodeCount = inodes + Math.max(4096, inodes);
    const sizeMib = Math.ceil((bytes * 1.2 + inodeCount * 256) / MiB) + 48;
    const out = deps.store.tempPath();
    try {
      await deps.runner.run('mkfs.ext4', [
        '-q',
        '-F',
        '-E',
        'root_owner=0:0',
        '-N',
        String(inodeCount),
        '-d',
        tree,
        out,
        `${sizeMib}M`,
      ]);
      return await deps.store.hashTemp(out);
    } catch (err) {
      await deps.store.discard(out);
      throw err;
    }
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}
