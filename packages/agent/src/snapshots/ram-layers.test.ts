import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { BLOCK, materialize, type RamLayer, writeDiffLayer, writeFullLayer } from './ram-layers.ts';

const PAGES = 600;
const work = await mkdtemp(join(tmpdir(), 'nqvm-ram-layers-'));
afterAll(() => rm(work, { recursive: true, force: true }));

const allocated = async (p: string) => (await stat(p)).blocks * 512;

function page(buf: Buffer, i: number, content: Buffer | 0): void {
  if (content === 0) buf.fill(0, i * BLOCK, (i + 1) * BLOCK);
  else content.copy(buf, i * BLOCK);
}

describe('RAM layers', () => {
  test('a full layer keeps non-zero pages only; diffs store changed pages and rebuild every generation', async () => {
    const ram = Buffer.alloc(PAGES * BLOCK);
    for (let i = 0; i < 200; i++) page(ram, i * 3, randomBytes(BLOCK));
    const src = join(work, 'guest.ram');
    await writeFile(src, ram);

    const full: RamLayer = { data: join(work, 'full.img') };
    await writeFullLayer(src, full.data);
    expect((await stat(full.data)).size).toBe(ram.length);
    expect(await allocated(full.data)).toBeLessThanOrEqual(200 * BLOCK + BLOCK);
    expect((await readFile(full.data)).equals(ram)).toBe(true);

    // second generation: 5 pages rewritten, one zeroed, one zero page filled
    const gen2 = Buffer.from(ram);
    for (const i of [0, 3, 30, 300, 597]) page(gen2, i, randomBytes(BLOCK));
    page(gen2, 6, 0);
    page(gen2, 1, randomBytes(BLOCK));
    await writeFile(src, gen2);
    const d1: RamLayer = { data: join(work, 'd1.img'), map: join(work, 'd1.map') };
    expect(await writeDiffLayer(src, [full], d1)).toBe(7);
    expect(await allocated(d1.data)).toBeLessThanOrEqual(6 * BLOCK + BLOCK);
    expect(await allocated(d1.data)).toBeLessThan(await allocated(full.data));

    // third generation over the diff
    const gen3 = Buffer.from(gen2);
    page(gen3, 3, 0);
    page(gen3, 599, randomBytes(BLOCK));
    await writeFile(src, gen3);
    const d2: RamLayer = { data: join(work, 'd2.img'), map: join(work, 'd2.map') };
    expect(await writeDiffLayer(src, [full, d1], d2)).toBe(2);

    for (const [chain, want, name] of [
      [[full], ram, 'g1'],
      [[full, d1], gen2, 'g2'],
      [[full, d1, d2], gen3, 'g3'],
    ] as const) {
      const out = join(work, `${name}.ram`);
      await materialize(chain, out, copyFile);
      expect((await readFile(out)).equals(want), name).toBe(true);
    }
  });

  test('a chain must start with a full layer', async () => {
    const src = join(work, 'small.ram');
    await writeFile(src, Buffer.alloc(4 * BLOCK, 1));
    await expect(
      materialize([{ data: src, map: join(work, 'nomap') }], join(work, 'never.ram'), copyFile),
    ).rejects.toThrow(/full layer/);
  });
});
