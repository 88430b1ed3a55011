import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TarEntry } from './oci.tar.ts';
import { LayerApplier, resolveInRoot } from './oci.unpack.ts';

const file = (path: string): TarEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  uid: 0,
  gid: 0,
  mtime: 0,
  size: 1,
  linkname: '',
});
const body = async function* () {
  yield Buffer.from('x');
};

describe('layers applied inside their tree', () => {
  let base: string;
  let root: string;
  let outside: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'nqvm-unpack-'));
    root = join(base, 'root');
    outside = join(base, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('resolves symlinks as if the tree were /', async () => {
    symlinkSync('/', join(root, 'up'));
    symlinkSync('../../../outside', join(root, 'rel'));
    expect(await resolveInRoot(root, 'up/etc/passwd', true)).toBe(join(root, 'etc/passwd'));
    expect(await resolveInRoot(root, 'rel/x', true)).toBe(join(root, 'outside/x'));
    expect(await resolveInRoot(root, '../../x', true)).toBe(join(root, 'x'));
  });

  it('writes through a link from a lower layer without leaving the tree', async () => {
    const a = new LayerApplier(root, { limit: 1 << 20 });
    a.beginLayer();
    await a.entry({ ...file('evil'), type: 'symlink', linkname: outside, size: 0 }, body());
    await a.endLayer();
    a.beginLayer();
    await a.entry(file('evil/pwned'), body());
    await a.endLayer();
    expect(() => readFileSync(join(outside, 'pwned'))).toThrow();
    expect(readFileSync(join(root, outside, 'pwned'), 'utf8')).toBe('x');
  });

  it('a whiteout through a link removes nothing outside the tree', async () => {
    writeFileSync(join(outside, 'keep'), 'k');
    symlinkSync(outside, join(root, 'd'));
    const a = new LayerApplier(root, { limit: 1 << 20 });
    a.beginLayer();
    await a.entry(file('d/.wh.keep'), body());
    await a.entry(file('d/.wh..wh..opq'), body());
    await a.endLayer();
    expect(readFileSync(join(outside, 'keep'), 'utf8')).toBe('k');
  });

  it('stops at the unpacked size limit', async () => {
    const a = new LayerApplier(root, { limit: 0 });
    a.beginLayer();
    await expect(a.entry(file('big'), body())).rejects.toThrow(/larger than the limit/);
  });
});
