import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandRunner, systemRunner } from '../../src/host/exec.ts';
import { copyImage, Ext4Image } from '../../src/rootfs/ext4.ts';
import { prepareRootfs, type RootfsPlan } from '../../src/rootfs/prepare.ts';
import { BaseImages } from '../../src/vms/base-images.ts';

let dir: string;
let base: string;
let sha: string;
const calls: string[] = [];
// The real e2fsprogs, with each command's name noted so a test can count debugfs runs.
const counting: CommandRunner = {
  run(cmd, args, opts) {
    calls.push(cmd);
    return systemRunner.run(cmd, args, opts);
  },
};

const plan = (n: number): RootfsPlan => ({
  hostname: `vm${n}`,
  network: { address: `10.77.0.${n + 1}/24`, gateway: '10.77.0.1' },
  user: { username: 'alice', password: 'pw', ssh_authorized_keys: ['ssh-ed25519 AAAAC3Nza alice@x'] },
  guestAgent: { config: { vm_id: `vm-${n}`, token: `token-${n}`, host_url: 'http://10.77.0.1:9001' } },
});

const text = (img: string, path: string) => new Ext4Image(img, systemRunner).readText(path);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nqvm-diskprep-'));
  const root = join(dir, 'tree');
  const files: Record<string, string> = {
    '/bin/busybox': 'fake busybox\n',
    '/etc/inittab': '::sysinit:/etc/init.d/rcS\n::respawn:/sbin/getty -L ttyS0 115200 vt100\n',
    '/etc/init.d/rcS': '#!/bin/sh\n',
    '/etc/passwd': 'root:x:0:0:root:/root:/bin/sh\n',
    '/etc/group': 'root:x:0:\n',
    '/etc/shadow': 'root:*:19000:0:99999:7:::\n',
  };
  for (const [p, body] of Object.entries(files)) {
    await mkdir(dirname(join(root, p)), { recursive: true });
    await writeFile(join(root, p), body);
  }
  await mkdir(join(root, 'sbin'), { recursive: true });
  await symlink('../bin/busybox', join(root, 'sbin/init'));
  base = join(dir, 'base.ext4');
  await systemRunner.run('mkfs.ext4', ['-q', '-F', '-d', root, '--', base, '32M']);
  sha = createHash('sha256')
    .update(await readFile(base))
    .digest('hex');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('per-VM disk preparation from a cached base image', () => {
  it('answers every read of a fresh copy from the base once seen: one debugfs run per later VM', async () => {
    const bases = new BaseImages(counting);
    const firstCopy = join(dir, 'vm1.ext4');
    await copyImage(systemRunner, base, firstCopy);
    calls.length = 0;
    await prepareRootfs(bases.copyOf(sha, base, firstCopy), plan(1));
    const firstRuns = calls.filter((c) => c === 'debugfs').length;

    const secondCopy = join(dir, 'vm2.ext4');
    await copyImage(systemRunner, base, secondCopy);
    calls.length = 0;
    const res = await prepareRootfs(bases.copyOf(sha, base, secondCopy), plan(2));
    expect(res.init.kind).toBe('busybox');
    expect(calls.filter((c) => c === 'debugfs')).toHaveLength(1);
    expect(firstRuns).toBeGreaterThan(1);

    expect(await text(firstCopy, '/etc/hostname')).toBe('vm1\n');
    expect(await text(secondCopy, '/etc/hostname')).toBe('vm2\n');
    expect(await text(secondCopy, '/etc/nqvm/guest-agent.json')).toContain('token-2');
    expect(await text(secondCopy, '/etc/passwd')).toContain('alice:');
    const fsck = await systemRunner.run('e2fsck', ['-fn', '--', secondCopy]);
    expect(fsck.code).toBe(0);
    expect(
      createHash('sha256')
        .update(await readFile(base))
        .digest('hex'),
    ).toBe(sha);
  });

  it('writes the same files as preparing the copy with no cache at all', async () => {
    const cachedCopy = join(dir, 'cached.ext4');
    const plainCopy = join(dir, 'plain.ext4');
    await copyImage(systemRunner, base, cachedCopy);
    await copyImage(systemRunner, base, plainCopy);
    const fixed = { hash: () => '$6$salt$fixedhash', now: () => new Date('2026-01-01T00:00:00Z') };
    await prepareRootfs(new BaseImages(systemRunner).copyOf(sha, base, cachedCopy), plan(3), fixed);
    await prepareRootfs(new Ext4Image(plainCopy, systemRunner), plan(3), fixed);
    for (const p of [
      '/etc/hostname',
      '/etc/hosts',
      '/etc/inittab',
      '/etc/passwd',
      '/etc/shadow',
      '/etc/nqvm/guest-agent.json',
    ])
      expect(await text(cachedCopy, p)).toBe(await text(plainCopy, p));
  });
});
