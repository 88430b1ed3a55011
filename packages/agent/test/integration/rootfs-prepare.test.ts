import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemRunner } from '../../src/host/exec.ts';
import { verifyPassword } from '../../src/rootfs/crypt.ts';
import { copyImage, Ext4Image } from '../../src/rootfs/ext4.ts';
import type { InitKind } from '../../src/rootfs/init-detect.ts';
import { prepareRootfs, type RootfsPlan, RootfsPrepareError } from '../../src/rootfs/prepare.ts';

type Tree = Record<string, string | { link: string } | { dir: true }>;

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n';
const GROUP = 'root:x:0:\ndaemon:x:1:\nshadow:x:42:\n';
const SHADOW = 'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n';

const TREES: Record<InitKind, Tree> = {
  busybox: {
    '/bin/sh': { link: 'busybox' },
    '/sbin/init': { link: '../bin/busybox' },
    '/etc/inittab':
      '::sysinit:/etc/init.d/rcS\n::respawn:/sbin/getty -L ttyS0 115200 vt100\n::shutdown:/bin/umount -a -r\n',
    '/etc/init.d/rcS': '#!/bin/sh\nmount -a\n',
    '/etc/passwd': 'root::0:0:root:/root:/bin/sh\n',
    '/etc/group': 'root:x:0:\n',
  },
  systemd: {
    '/bin': { link: 'usr/bin' },
    '/sbin': { link: 'usr/sbin' },
    '/lib': { link: 'usr/lib' },
    '/usr/bin/bash': '#!fake bash\n',
    '/usr/lib/systemd/systemd': '#!fake systemd\n',
    '/usr/sbin/init': { link: '../lib/systemd/systemd' },
    '/usr/lib/systemd/system/systemd-networkd.service': '[Unit]\nDescription=Network Configuration\n',
    '/etc/systemd/system/multi-user.target.wants': { dir: true },
    '/etc/passwd': PASSWD,
    '/etc/group': GROUP,
    '/etc/shadow': SHADOW,
    '/etc/gshadow': 'root:*::\nshadow:*::\n',
    '/etc/hosts': '127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n',
  },
  openrc: {
    '/bin/sh': { link: 'busybox' },
    '/sbin/init': { link: '/bin/busybox' },
    '/sbin/openrc': '#!fake openrc\n',
    '/etc/inittab': '::sysinit:/sbin/openrc sysinit\n::wait:/sbin/openrc default\n',
    '/etc/rc.conf': '',
    '/etc/init.d/networking': '#!/sbin/openrc-run\n',
    '/etc/runlevels/default': { dir: true },
    '/etc/passwd': PASSWD,
    '/etc/group': GROUP,
    '/etc/shadow': SHADOW,
  },
  sysvinit: {
    '/sbin/init': 'fake sysvinit binary\n',
    '/bin/bash': '#!fake bash\n',
    '/etc/inittab': 'id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\n1:2345:respawn:/sbin/getty 38400 tty1\n',
    '/etc/init.d/networking': '#!/bin/sh\n',
    '/etc/init.d/rc': '#!/bin/sh\n',
    '/etc/rcS.d': { dir: true },
    '/etc/rc2.d': { dir: true },
    '/etc/passwd': PASSWD,
    '/etc/group': GROUP,
    '/etc/shadow': SHADOW,
  },
};

let work: string;
let built = 0;

async function buildImage(kind: InitKind, sizeMiB = 32): Promise<string> {
  const name = `${kind}-${built++}`;
  const root = join(work, `${name}-tree`);
  for (const [path, node] of Object.entries(TREES[kind])) {
    const at = join(root, path);
    await mkdir(dirname(at), { recursive: true });
    if (typeof node === 'string') await writeFile(at, node);
    else if ('link' in node) await symlink(node.link, at);
    else await mkdir(at, { recursive: true });
  }
  if (kind === 'busybox' || kind === 'openrc') await copyFile('/usr/bin/busybox', join(root, 'bin/busybox'));
  await chmod(join(root, 'etc/passwd'), 0o644);
  const img = join(work, `${name}.ext4`);
  await systemRunner.run('mkfs.ext4', ['-q', '-F', '-d', root, '--', img, `${sizeMiB}M`]);
  return img;
}

const sha256 = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk7nqvmtestkeyonly user@host';

function plan(username: string): RootfsPlan {
  return {
    hostname: 'vm-test1',
    network: { address: '10.0.0.5/24', gateway: '10.0.0.1', dns: ['10.0.0.1'] },
    user: { username, password: 'S3cret pass', ssh_authorized_keys: [KEY] },
    guestAgent: { config: { vm_id: 'vm-123', token: 'tok-abc', host_url: 'http://10.0.0.1:19090', port: 9000 } },
  };
}

async function fsckClean(img: string): Promise<void> {
  const r = await systemRunner.run('e2fsck', ['-fn', '--', img]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nqvm-rootfs-it-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.each(['busybox', 'systemd', 'openrc', 'sysvinit'] as const)('prepareRootfs on a %s rootfs', (kind) => {
  let base: string;
  let baseHash: string;
  let vm: Ext4Image;

  beforeAll(async () => {
    base = await buildImage(kind);
    baseHash = await sha256(base);
    const copy = join(work, `${kind}-vm.ext4`);
    await copyImage(systemRunner, base, copy);
    vm = new Ext4Image(copy, systemRunner);
    const username = kind === 'busybox' ? 'root' : 'alice';
    const result = await prepareRootfs(vm, plan(username));
    expect(result.init.kind).toBe(kind);
    // A second run must converge to the same files, not append.
    await prepareRootfs(vm, plan(username));
  });

  it('leaves the base image byte-for-byte unchanged and the copy fsck-clean', async () => {
    expect(await sha256(base)).toBe(baseHash);
    await fsckClean(vm.path);
  });

  it('sets the hostname', async () => {
    expect(await vm.readText('/etc/hostname')).toBe('vm-test1\n');
    const hosts = await vm.readText('/etc/hosts');
    expect(hosts.match(/^127\.0\.1\.1\s.*$/gm)).toEqual(['127.0.1.1\tvm-test1']);
  });

  it('writes credentials whose shadow hash verifies, with safe modes and owners', async () => {
    const username = kind === 'busybox' ? 'root' : 'alice';
    const shadow = await vm.readText('/etc/shadow');
    const entries = shadow.split('\n').filter((l) => l.startsWith(`${username}:`));
    expect(entries).toHaveLength(1);
    expect(verifyPassword('S3cret pass', entries[0]?.split(':')[1] ?? '')).toBe(true);
    const st = await vm.stat('/etc/shadow');
    expect(st).toMatchObject({ uid: 0, gid: kind === 'busybox' ? 0 : 42, mode: kind === 'busybox' ? 0o600 : 0o640 });
    const passwd = await vm.readText('/etc/passwd');
    const uid = kind === 'busybox' ? 0 : 1000;
    const home = kind === 'busybox' ? '/root' : '/home/alice';
    if (kind !== 'busybox') {
      const shell = kind === 'systemd' || kind === 'sysvinit' ? '/bin/bash' : '/bin/sh';
      expect(passwd.match(/^alice:.*$/gm)).toEqual([`alice:x:1000:1000::/home/alice:${shell}`]);
      expect((await vm.readText('/etc/group')).match(/^alice:.*$/gm)).toEqual(['alice:x:1000:']);
      expect(await vm.stat(home)).toMatchObject({ type: 'directory', uid: 1000, gid: 1000 });
    } else {
      expect(passwd).toBe('root:x:0:0:root:/root:/bin/sh\n');
    }
    expect(await vm.stat(`${home}/.ssh`)).toMatchObject({ type: 'directory', mode: 0o700, uid, gid: uid });
    expect(await vm.stat(`${home}/.ssh/authorized_keys`)).toMatchObject({
      type: 'regular',
      mode: 0o600,
      uid,
      gid: uid,
    });
    expect(await vm.readText(`${home}/.ssh/authorized_keys`)).toBe(`${KEY}\n`);
  });

  it('writes the static address in the form this init applies at boot', async () => {
    expect(await vm.readText('/etc/resolv.conf')).toBe('nameserver 10.0.0.1\n');
    if (kind === 'systemd') {
      expect(await vm.readText('/etc/systemd/network/10-nqvm.network')).toContain(
        'Name=eth0\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\n',
      );
      expect(await vm.readLink('/etc/systemd/system/multi-user.target.wants/systemd-networkd.service')).toBe(
        '/lib/systemd/system/systemd-networkd.service',
      );
      return;
    }
    expect(await vm.readText('/etc/network/interfaces')).toContain(
      'iface eth0 inet static\n    address 10.0.0.5\n    netmask 255.255.255.0\n    gateway 10.0.0.1\n',
    );
    if (kind === 'busybox') {
      expect(await vm.stat('/etc/nqvm/network.sh')).toMatchObject({ mode: 0o755 });
      expect(await vm.readText('/etc/nqvm/network.sh')).toContain(
        'ip addr replace 10.0.0.5/24 dev eth0\nip route replace default via 10.0.0.1 dev eth0\n',
      );
    }
    if (kind === 'openrc') expect(await vm.readLink('/etc/runlevels/boot/networking')).toBe('/etc/init.d/networking');
    if (kind === 'sysvinit') expect(await vm.readLink('/etc/rcS.d/S10networking')).toBe('/etc/init.d/networking');
  });

  it('installs the guest agent config (0600) and launcher', async () => {
    expect(await vm.stat('/etc/nqvm/guest-agent.json')).toMatchObject({ mode: 0o600, uid: 0, gid: 0 });
    expect(JSON.parse(await vm.readText('/etc/nqvm/guest-agent.json'))).toEqual({
      vm_id: 'vm-123',
      token: 'tok-abc',
      host_url: 'http://10.0.0.1:19090',
      port: 9000,
    });
    expect(await vm.stat('/etc/nqvm/run-agent.sh')).toMatchObject({ mode: 0o755 });
    expect(await vm.readText('/etc/nqvm/run-agent.sh')).toContain('LABEL=nqvm-tools /opt/nqvm');
    expect(await vm.stat('/opt/nqvm')).toMatchObject({ type: 'directory' });
  });

  it('wires a respawning service for this init', async () => {
    if (kind === 'systemd') {
      const unit = '/etc/systemd/system/nqvm-guest-agent.service';
      expect(await vm.readText(unit)).toContain('ExecStart=/etc/nqvm/run-agent.sh\nRestart=always\n');
      expect(await vm.readLink('/etc/systemd/system/multi-user.target.wants/nqvm-guest-agent.service')).toBe(unit);
    } else if (kind === 'openrc') {
      expect(await vm.stat('/etc/init.d/nqvm-guest-agent')).toMatchObject({ mode: 0o755 });
      expect(await vm.readText('/etc/init.d/nqvm-guest-agent')).toContain(
        'supervisor=supervise-daemon\ncommand=/etc/nqvm/run-agent.sh\n',
      );
      expect(await vm.readLink('/etc/runlevels/default/nqvm-guest-agent')).toBe('/etc/init.d/nqvm-guest-agent');
    } else if (kind === 'sysvinit') {
      expect(await vm.stat('/etc/init.d/nqvm-guest-agent')).toMatchObject({ mode: 0o755 });
      for (const rl of [2, 3, 4, 5])
        expect(await vm.readLink(`/etc/rc${rl}.d/S99nqvm-guest-agent`)).toBe('../init.d/nqvm-guest-agent');
      expect(await vm.readLink('/etc/rc0.d/K01nqvm-guest-agent')).toBe('../init.d/nqvm-guest-agent');
      expect(await vm.readText('/etc/nqvm/supervise.sh')).toContain(
        'while :; do\n  /etc/nqvm/run-agent.sh\n  sleep 2\ndone',
      );
    } else {
      expect(await vm.readText('/etc/inittab')).toBe(
        '::sysinit:/etc/init.d/rcS\n::sysinit:/etc/nqvm/network.sh\n::respawn:/sbin/getty -L ttyS0 115200 vt100\n::shutdown:/bin/umount -a -r\n::respawn:/etc/nqvm/run-agent.sh\n',
      );
    }
  });
});

describe('prepareRootfs failures are loud and typed', () => {
  it('names the step: a systemd image without systemd-networkd cannot get a static address', async () => {
    const img = await buildImage('systemd');
    const vm = new Ext4Image(img, systemRunner);
    await vm.writeFile('/usr/lib/systemd/system/systemd-networkd.service', '');
    const b = vm.batch();
    await b.remove('/usr/lib/systemd/system/systemd-networkd.service');
    await b.commit();
    const err = await prepareRootfs(vm, plan('alice')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RootfsPrepareError);
    expect((err as RootfsPrepareError).step).toBe('network');
  });

  it('attributes a debugfs failure inside the batch to its step (copy mode into a full image)', async () => {
    const big = join(work, 'big.bin');
    await writeFile(big, Buffer.alloc(48 * 1024 * 1024, 1));
    const img = await buildImage('busybox', 16);
    const vm = new Ext4Image(img, systemRunner);
    const p = plan('root');
    p.guestAgent = { ...p.guestAgent!, mode: 'copy', guestAgentJs: big, runtime: { dir: work, files: [] } };
    const err = await prepareRootfs(vm, p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RootfsPrepareError);
    expect((err as RootfsPrepareError).step).toBe('guest-agent');
    expect(String(err)).toMatch(/allocate|space|full/i);
  });

  it('refuses unusable plan values before writing anything', async () => {
    const img = await buildImage('openrc');
    const before = await sha256(img);
    const vm = new Ext4Image(img, systemRunner);
    const bad: [RootfsPlan, string][] = [
      [{ hostname: 'x\n127.0.0.1 evil' }, 'hostname'],
      [{ network: { address: '10.0.0.5/24', interface: 'eth0 up;reboot' } }, 'network'],
      [{ user: { username: '$(touch /tmp/MARK)' } }, 'credentials'],
      [{ user: { username: 'bob', ssh_authorized_keys: ['ssh-ed25519 AAAA x\nssh-rsa AAAA evil'] } }, 'credentials'],
    ];
    for (const [p, step] of bad) {
      const err = await prepareRootfs(vm, p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RootfsPrepareError);
      expect((err as RootfsPrepareError).step).toBe(step);
    }
    expect(await sha256(img)).toBe(before);
    expect(existsSync('/tmp/MARK')).toBe(false);
  });
});
