import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpareDisks } from './spare-disks.ts';

const SHA = 'a'.repeat(64);
let dir: string;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nqvm-spares-'));
  base = path.join(dir, 'base.ext4');
  await writeFile(base, 'base image bytes');
  await mkdir(path.join(dir, 'vms'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('SpareDisks', () => {
  it('copies the first time, then hands out the ready spare and makes the next one', async () => {
    const copies: string[] = [];
    const spares = new SpareDisks(path.join(dir, 'spares'), async (from, to) => {
      copies.push(to);
      await copyFile(from, to);
    });
    const first = path.join(dir, 'vms', 'one.ext4');
    expect(await spares.provide(SHA, base, first)).toBe(false);
    await spares.idle();
    expect(await readdir(path.join(dir, 'spares'))).toEqual([`${SHA}.ext4`]);
    const second = path.join(dir, 'vms', 'two.ext4');
    expect(await spares.provide(SHA, base, second)).toBe(true);
    for (const f of [first, second]) expect(await readFile(f, 'utf8')).toBe('base image bytes');
    await spares.idle();
    expect(await readdir(path.join(dir, 'spares'))).toEqual([`${SHA}.ext4`]);
    // The boot path copied once (the first VM); the rest were background spares.
    expect(copies.filter((c) => c.startsWith(path.join(dir, 'vms')))).toEqual([first]);
  });

  it('makes the next spare only once the boot it was taken for has settled', async () => {
    const copies: string[] = [];
    const spares = new SpareDisks(path.join(dir, 'spares-after'), async (from, to) => {
      copies.push(to);
      await copyFile(from, to);
    });
    let launched = () => {};
    const after = new Promise<void>((resolve) => {
      launched = resolve;
    });
    const dest = path.join(dir, 'vms', 'after.ext4');
    expect(await spares.provide(SHA, base, dest, after)).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(copies).toEqual([dest]);
    launched();
    await spares.idle();
    expect(copies).toHaveLength(2);
    expect(await readdir(path.join(dir, 'spares-after'))).toEqual([`${SHA}.ext4`]);
  });

  it('gives the spare to exactly one of several concurrent VMs; the others get copies', async () => {
    const spares = new SpareDisks(path.join(dir, 'spares'), (from, to) => copyFile(from, to));
    const dests = [1, 2, 3, 4].map((i) => path.join(dir, 'vms', `c${i}.ext4`));
    const used = await Promise.all(dests.map((d) => spares.provide(SHA, base, d)));
    expect(used.filter(Boolean)).toHaveLength(1);
    for (const d of dests) expect(await readFile(d, 'utf8')).toBe('base image bytes');
    await spares.idle();
  });

  it('leaves no temporary file when making a spare fails, and sweeps ones an earlier agent left', async () => {
    const sparesDir = path.join(dir, 'spares-failing');
    await mkdir(sparesDir);
    await writeFile(path.join(sparesDir, '.tmp-0123456789abcdef-dead'), 'half a copy');
    const errors: unknown[] = [];
    let calls = 0;
    const spares = new SpareDisks(
      sparesDir,
      async (from, to) => {
        calls++;
        await copyFile(from, to);
        if (to.includes('.tmp-')) throw new Error('disk full');
      },
      (err) => errors.push(err),
    );
    expect(await spares.provide(SHA, base, path.join(dir, 'vms', 'f.ext4'))).toBe(false);
    await spares.idle();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    expect(await readdir(sparesDir)).toEqual([]);
    await expect(spares.provide('../../etc', base, path.join(dir, 'vms', 'g.ext4'))).rejects.toThrow(/sha256/);
  });
});
