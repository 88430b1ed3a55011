import { type FileHandle, open, readFile, writeFile } from 'node:fs/promises';

/** Layers compare and store guest RAM in 4 KiB pages. */
export const BLOCK = 4096;
const CHUNK = 256 * BLOCK;
const ZERO = Buffer.alloc(BLOCK);

/**
 * One layer of a RAM image. A full layer (no `map`) holds every page, zero pages as holes; a diff layer holds
 * the pages its `map` bitmap marks (changed since the layer below), the rest of its data file being holes.
 */
export interface RamLayer {
  data: string;
  map?: string;
}

interface OpenLayer {
  fh: FileHandle;
  bits?: Buffer;
}

const bitSet = (bits: Buffer, block: number) => ((bits[block >> 3] ?? 0) & (1 << (block & 7))) !== 0;

function anyBit(bits: Buffer, first: number, count: number): boolean {
  for (let b = first; b < first + count; b++) if (bitSet(bits, b)) return true;
  return false;
}

async function openChain(chain: readonly RamLayer[]): Promise<OpenLayer[]> {
  if (chain.length === 0 || chain[0]?.map) throw new Error('a RAM chain starts with a full layer');
  const open_: OpenLayer[] = [];
  try {
    for (const l of chain)
      open_.push({ fh: await open(l.data, 'r'), ...(l.map ? { bits: await readFile(l.map) } : {}) });
  } catch (e) {
    await closeAll(open_);
    throw e;
  }
  return open_;
}

async function closeAll(layers: readonly OpenLayer[]): Promise<void> {
  await Promise.all(layers.map((l) => l.fh.close()));
}

/** Reads `len` bytes at `pos` as the chain's top layer sees them (each page from the newest layer that has it). */
async function readChained(layers: readonly OpenLayer[], pos: number, out: Buffer): Promise<void> {
  out.fill(0);
  const [base, ...diffs] = layers;
  await base?.fh.read(out, 0, out.length, pos);
  const first = pos / BLOCK;
  const count = out.length / BLOCK;
  const tmp = Buffer.allocUnsafe(out.length);
  for (const d of diffs) {
    if (!d.bits || !anyBit(d.bits, first, count)) continue;
    tmp.fill(0);
    await d.fh.read(tmp, 0, tmp.length, pos);
    for (let i = 0; i < count; i++) if (bitSet(d.bits, first + i)) tmp.copy(out, i * BLOCK, i * BLOCK, (i + 1) * BLOCK);
  }
}

/** Writes the pages `keep` selects at their offsets, coalescing neighbours; the rest stay holes. */
async function writePages(out: FileHandle, buf: Buffer, pos: number, keep: (i: number) => boolean): Promise<void> {
  const count = buf.length / BLOCK;
  let run = -1;
  for (let i = 0; i <= count; i++) {
    const k = i < count && keep(i);
    if (k && run < 0) run = i;
    if (!k && run >= 0) {
      await out.write(buf, run * BLOCK, (i - run) * BLOCK, pos + run * BLOCK);
      run = -1;
    }
  }
}

const isZero = (buf: Buffer, i: number) => buf.subarray(i * BLOCK, (i + 1) * BLOCK).equals(ZERO);

async function eachChunk(size: number, fn: (pos: number, len: number) => Promise<void>): Promise<void> {
  if (size % BLOCK !== 0) throw new Error(`RAM size ${size} is not a multiple of ${BLOCK}`);
  for (let pos = 0; pos < size; pos += CHUNK) await fn(pos, Math.min(CHUNK, size - pos));
}

/** A full layer of `src`: its non-zero pages in a sparse file of the same length. */
export async function writeFullLayer(src: string, dst: string): Promise<void> {
  const inp = await open(src, 'r');
  const out = await open(dst, 'wx', 0o600);
  try {
    const { size } = await inp.stat();
    await out.truncate(size);
    const buf = Buffer.alloc(CHUNK);
    await eachChunk(size, async (pos, len) => {
      const b = buf.subarray(0, len);
      b.fill(0);
      await inp.read(b, 0, len, pos);
      await writePages(out, b, pos, (i) => !isZero(b, i));
    });
  } finally {
    await Promise.all([inp.close(), out.close()]);
  }
}

/**
 * A diff layer of `src` over `parent` (a chain from a full layer): the pages that differ, and a bitmap of them
 * (a page that became zero is marked but stays a hole). Returns how many pages changed.
 */
export async function writeDiffLayer(src: string, parent: readonly RamLayer[], dst: RamLayer): Promise<number> {
  if (!dst.map) throw new Error('a diff layer needs a map file');
  const layers = await openChain(parent);
  const inp = await open(src, 'r');
  const out = await open(dst.data, 'wx', 0o600);
  let changed = 0;
  try {
    const { size } = await inp.stat();
    await out.truncate(size);
    const bits = Buffer.alloc(Math.ceil(size / BLOCK / 8));
    const cur = Buffer.alloc(CHUNK);
    const old = Buffer.alloc(CHUNK);
    await eachChunk(size, async (pos, len) => {
      const c = cur.subarray(0, len);
      const o = old.subarray(0, len);
      c.fill(0);
      await inp.read(c, 0, len, pos);
      await readChained(layers, pos, o);
      const diff: boolean[] = [];
      for (let i = 0; i < len / BLOCK; i++) {
        const d = !c.subarray(i * BLOCK, (i + 1) * BLOCK).equals(o.subarray(i * BLOCK, (i + 1) * BLOCK));
        diff.push(d);
        if (!d) continue;
        const block = pos / BLOCK + i;
        bits[block >> 3] = (bits[block >> 3] ?? 0) | (1 << (block & 7));
        changed++;
      }
      await writePages(out, c, pos, (i) => diff[i] === true && !isZero(c, i));
    });
    await writeFile(dst.map, bits, { mode: 0o600, flag: 'wx' });
  } finally {
    await Promise.all([inp.close(), out.close(), closeAll(layers)]);
  }
  return changed;
}

/** Writes a diff layer's marked pages over `dst` in place (unmarked pages keep what lower layers wrote). */
async function applyDiff(out: FileHandle, layer: RamLayer): Promise<void> {
  if (!layer.map) throw new Error('only diff layers apply over a base');
  const bits = await readFile(layer.map);
  const inp = await open(layer.data, 'r');
  try {
    const blocks = bits.length * 8;
    const buf = Buffer.alloc(CHUNK);
    let b = 0;
    while (b < blocks) {
      if (!bitSet(bits, b)) {
        b++;
        continue;
      }
      let end = b;
      while (end < blocks && end - b < CHUNK / BLOCK && bitSet(bits, end)) end++;
      const run = buf.subarray(0, (end - b) * BLOCK);
      run.fill(0);
      await inp.read(run, 0, run.length, b * BLOCK);
      await out.write(run, 0, run.length, b * BLOCK);
      b = end;
    }
  } finally {
    await inp.close();
  }
}

/**
 * Rebuilds the RAM the chain's top layer describes into `dst`: `copyBase` copies the full layer (sparse or
 * reflinked), then each diff's pages are written over it in order.
 */
export async function materialize(
  chain: readonly RamLayer[],
  dst: string,
  copyBase: (src: string, dst: string) => Promise<void>,
): Promise<void> {
  const [base, ...diffs] = chain;
  if (!base || base.map) throw new Error('a RAM chain starts with a full layer');
  await copyBase(base.data, dst);
  if (diffs.length === 0) return;
  const out = await open(dst, 'r+');
  try {
    for (const d of diffs) await applyDiff(out, d);
  } finally {
    await out.close();
  }
}
