import { describe, expect, it } from 'vitest';
import type { Ext4Stat, RootfsReader } from '../../src/rootfs/ext4.ts';
import { detectInit, UnknownInitError } from '../../src/rootfs/init-detect.ts';

type Node = { dir: true } | { link: string } | { text: string };

/** A tiny in-memory guest tree: enough of RootfsReader for init detection. */
function tree(nodes: Record<string, Node>): RootfsReader {
  const get = (p: string) => nodes[p];
  return {
    async exists(p) {
      return get(p) !== undefined;
    },
    async stat(p) {
      const n = get(p);
      if (!n) return null;
      const type: Ext4Stat['type'] = 'dir' in n ? 'directory' : 'link' in n ? 'symlink' : 'regular';
      return { type, mode: 0o755, uid: 0, gid: 0, size: 0 };
    },
    async readLink(p) {
      const n = get(p);
      if (!n || !('link' in n)) throw new Error(`${p} is not a link`);
      return n.link;
    },
    async readText(p) {
      const n = get(p);
      if (!n || !('text' in n)) throw new Error(`${p} is not a file`);
      return n.text;
    },
  };
}

const BUSYBOX_INITTAB = '::sysinit:/etc/init.d/rcS\n::respawn:-/bin/sh\n';
const SYSV_INITTAB = 'id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\n1:2345:respawn:/sbin/getty 38400 tty1\n';

describe('detectInit', () => {
  it('finds systemd through /sbin/init -> /lib/systemd/systemd (Debian)', async () => {
    const fs = tree({
      '/sbin/init': { link: '/lib/systemd/systemd' },
      '/lib/systemd/systemd': { text: '' },
      '/etc/init.d': { dir: true },
    });
    expect((await detectInit(fs)).kind).toBe('systemd');
  });

  it('finds systemd under /usr/lib with a relative link', async () => {
    const fs = tree({ '/sbin/init': { link: '../lib/systemd/systemd' }, '/usr/lib/systemd/systemd': { text: '' } });
    expect((await detectInit(fs)).kind).toBe('systemd');
  });

  it('finds OpenRC by /sbin/openrc even under busybox init (Alpine)', async () => {
    const fs = tree({
      '/sbin/init': { link: '/bin/busybox' },
      '/sbin/openrc': { text: '' },
      '/etc/inittab': { text: BUSYBOX_INITTAB },
    });
    expect((await detectInit(fs)).kind).toBe('openrc');
  });

  it('finds OpenRC by /etc/init.d plus /etc/rc.conf', async () => {
    const fs = tree({ '/sbin/init': { text: '' }, '/etc/init.d': { dir: true }, '/etc/rc.conf': { text: '' } });
    expect((await detectInit(fs)).kind).toBe('openrc');
  });

  it('finds busybox init with a busybox inittab or none at all', async () => {
    const withTab = tree({
      '/sbin/init': { link: '../bin/busybox' },
      '/etc/inittab': { text: BUSYBOX_INITTAB },
      '/etc/init.d': { dir: true },
    });
    expect((await detectInit(withTab)).kind).toBe('busybox');
    const bare = tree({ '/sbin/init': { link: '/bin/busybox' } });
    expect(await detectInit(bare)).toMatchObject({
      kind: 'busybox',
      evidence: expect.arrayContaining(['no /etc/inittab (busybox defaults)']),
    });
  });

  it('finds sysvinit: a real /sbin/init binary with inittab and init.d', async () => {
    const fs = tree({
      '/sbin/init': { text: 'ELF' },
      '/etc/inittab': { text: SYSV_INITTAB },
      '/etc/init.d': { dir: true },
    });
    expect((await detectInit(fs)).kind).toBe('sysvinit');
  });

  it('does not take systemd when /sbin/init points elsewhere', async () => {
    const fs = tree({
      '/sbin/init': { text: 'ELF' },
      '/lib/systemd/systemd': { text: '' },
      '/etc/inittab': { text: SYSV_INITTAB },
      '/etc/init.d': { dir: true },
    });
    expect((await detectInit(fs)).kind).toBe('sysvinit');
  });

  it('throws a typed error with the evidence when nothing matches', async () => {
    await expect(detectInit(tree({}))).rejects.toBeInstanceOf(UnknownInitError);
    const odd = tree({ '/sbin/init': { link: '/bin/busybox' }, '/etc/inittab': { text: SYSV_INITTAB } });
    await expect(detectInit(odd)).rejects.toThrow(/not in busybox syntax/);
    const noInitd = tree({ '/sbin/init': { text: 'ELF' }, '/lib/systemd/systemd': { text: '' } });
    await expect(detectInit(noInitd)).rejects.toThrow(/does not point to it/);
  });
});
