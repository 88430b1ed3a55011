import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemRunner } from '../../src/host/exec.ts';
import { copyImage, Ext4CommandError, Ext4Image, GuestPathError, resizeImage } from '../../src/rootfs/ext4.ts';

let work: string;
let img: Ext4Image;
let n = 0;
const MARK = join(tmpdir(), `nqvm-ext4-mark-${process.pid}`);
const sha256 = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nqvm-ext4-it-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  const tree = join(work, `tree-${n}`);
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc/hostname'), 'base\n');
  const path = join(work, `img-${n++}.ext4`);
  const r = await systemRunner.run('mkfs.ext4', ['-q', '-F', '-d', tree, '--', path, '16M']);
  expect(r.code).toBe(0);
  img = new Ext4Image(path, systemRunner);
});

describe('Ext4Image', () => {
  it('writes, replaces and reads back files with mode and owner, binary-exact', async () => {
    const bin = randomBytes(200_000);
    await img.mkdirP('/opt/a/b', { mode: 0o750, uid: 1000, gid: 1001 });
    await img.writeFile('/opt/a/b/blob', bin, { mode: 0o600, uid: 1000, gid: 1001 });
    await img.writeFile('/etc/hostname', 'replaced\n');
    expect((await img.readFile('/opt/a/b/blob')).equals(bin)).toBe(true);
    expect(await img.readText('/etc/hostname')).toBe('replaced\n');
    expect(await img.stat('/opt/a/b/blob')).toEqual({
      type: 'regular',
      mode: 0o600,
      uid: 1000,
      gid: 1001,
      size: 200_000,
    });
    expect(await img.stat('/opt/a/b')).toMatchObject({ type: 'directory', mode: 0o750, uid: 1000, gid: 1001 });
    expect(await img.stat('/opt/a')).toMatchObject({ type: 'directory', mode: 0o755 });
    expect(await img.exists('/nope')).toBe(false);
    expect((await img.listDir('/etc')).map((e) => e.name)).toEqual(['hostname']);
  });

  it('copies a host file, keeping arbitrary host paths out of the command file', async () => {
    const weird = join(work, 'name with space;$(touch MARK)');
    await writeFile(weird, 'from host\n');
    await img.writeFile('/etc/from-host', { hostFile: weird }, { mode: 0o644 });
    expect(await img.readText('/etc/from-host')).toBe('from host\n');
    expect(existsSync(join(work, 'MARK'))).toBe(false);
  });

  it('makes and replaces symlinks, fast and slow', async () => {
    const long = `/usr/lib/${'x'.repeat(80)}/busybox`;
    await img.symlink('/etc/short', '../bin/busybox');
    await img.symlink('/etc/long', long);
    await img.symlink('/etc/short', '/bin/busybox');
    expect(await img.readLink('/etc/short')).toBe('/bin/busybox');
    expect(await img.readLink('/etc/long')).toBe(long);
  });

  it.each([
    '/etc/x\nrm /etc/hostname',
    '/etc/"x',
    "/etc/'x",
    '/etc/$(touch MARKFILE)',
    '/etc/`touch MARKFILE`',
    '/etc/x;rm -rf /',
    '/etc/../etc/hostname',
    'etc/hostname',
  ])('refuses the injection path %j and leaves the image untouched', async (raw) => {
    const path = raw.replace('MARKFILE', MARK);
    const before = await sha256(img.path);
    await expect(img.writeFile(path, 'x')).rejects.toBeInstanceOf(GuestPathError);
    await expect(img.mkdirP(path)).rejects.toBeInstanceOf(GuestPathError);
    // Link targets are only data to the guest, so `..` and relative ones are fine; parser-breaking ones are not.
    if (/[^A-Za-z0-9_@%+=,.:/-]/.test(path))
      await expect(img.symlink('/etc/link', path)).rejects.toBeInstanceOf(GuestPathError);
    await expect(img.symlink(path, '/etc/hostname')).rejects.toBeInstanceOf(GuestPathError);
    await expect(img.readFile(path)).rejects.toBeInstanceOf(GuestPathError);
    expect(await sha256(img.path)).toBe(before);
    expect(await img.readText('/etc/hostname')).toBe('base\n');
    expect(existsSync(MARK)).toBe(false);
  });

  it('turns errors debugfs prints (while exiting 0) into Ext4CommandError, per step', async () => {
    const b = img.batch();
    b.setStep('fill');
    await b.writeFile('/etc/big', Buffer.alloc(32 * 1024 * 1024, 7));
    const err = await b.commit().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Ext4CommandError);
    expect((err as Ext4CommandError).errors[0]?.step).toBe('fill');
  });

  it('refuses to write under a missing directory or over a directory', async () => {
    await expect(img.writeFile('/missing/dir/file', 'x')).rejects.toThrow(/parent directory missing/);
    await expect(img.writeFile('/etc', 'x')).rejects.toThrow(/is a directory/);
    await expect(img.mkdirP('/etc/hostname/sub')).rejects.toThrow(/not a directory/);
  });
});

describe('copyImage and resizeImage', () => {
  it('copies sparsely without touching the base, then grows the copy cleanly', async () => {
    const before = await sha256(img.path);
    const copy = join(work, 'copy.ext4');
    await copyImage(systemRunner, img.path, copy);
    expect(await sha256(copy)).toBe(before);
    expect((await stat(copy)).blocks * 512).toBeLessThan((await stat(copy)).size);
    await resizeImage(systemRunner, copy, 64);
    expect((await stat(copy)).size).toBe(64 * 1024 * 1024);
    const fsck = await systemRunner.run('e2fsck', ['-fn', '--', copy]);
    expect(fsck.code).toBe(0);
    const copied = new Ext4Image(copy, systemRunner);
    await copied.writeFile('/etc/big', Buffer.alloc(32 * 1024 * 1024, 7));
    expect((await copied.stat('/etc/big'))?.size).toBe(32 * 1024 * 1024);
    expect(await sha256(img.path)).toBe(before);
    await expect(resizeImage(systemRunner, copy, 8)).rejects.toThrow(/shrink/);
  });
});
