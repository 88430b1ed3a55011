import { describe, expect, it } from 'vitest';
import { assertGuestPath, GuestPathError } from '../../src/rootfs/ext4.ts';
import {
  agentConfigJson,
  assertHostname,
  busyboxInittab,
  hostsFile,
  insservDepend,
  interfacesFile,
  networkdFile,
  PlanError,
  parseNetwork,
  runAgentScript,
} from '../../src/rootfs/guest-config.ts';
import { parseLdd, RuntimeError } from '../../src/rootfs/runtime.ts';

describe('assertGuestPath', () => {
  it('accepts absolute normalized paths in the safe charset', () => {
    for (const p of [
      '/',
      '/etc/hostname',
      '/opt/nqvm/node/ld-linux-x86-64.so.2',
      '/etc/systemd/system/a@b.service',
      '/lib/libstdc++.so.6',
    ]) {
      expect(assertGuestPath(p)).toBe(p);
    }
  });

  it.each([
    ['relative', 'etc/passwd'],
    ['dot-dot', '/etc/../root'],
    ['dot', '/etc/./x'],
    ['double slash', '/etc//x'],
    ['trailing slash', '/etc/'],
    ['newline (second debugfs command)', '/tmp/x\nrm /etc/passwd'],
    ['double quote', '/tmp/"x'],
    ['single quote', "/tmp/'x"],
    ['space', '/tmp/a b'],
    ['command substitution', '/tmp/$(touch /tmp/MARK)'],
    ['backticks', '/tmp/`touch /tmp/MARK`'],
    ['semicolon', '/tmp/x;rm -rf /'],
    ['comment', '/tmp/#x'],
    ['backslash', '/tmp/a\\nb'],
    ['empty', ''],
  ])('refuses a %s path', (_name, path) => {
    expect(() => assertGuestPath(path)).toThrow(GuestPathError);
  });
});

describe('network plan', () => {
  it('derives netmask and prefix from CIDR and validates every field', () => {
    expect(parseNetwork({ address: '10.0.0.5/24', gateway: '10.0.0.1', dns: ['10.0.0.1'] })).toEqual({
      ip: '10.0.0.5',
      prefix: 24,
      netmask: '255.255.255.0',
      gateway: '10.0.0.1',
      dns: ['10.0.0.1'],
      iface: 'eth0',
    });
    expect(parseNetwork({ address: '172.16.3.9/20' }).netmask).toBe('255.255.240.0');
    for (const bad of [
      { address: '10.0.0.5' },
      { address: '10.0.0.256/24' },
      { address: '10.0.0.5/33' },
      { address: '10.0.0.5/24', gateway: '10.0.0.1\nx' },
      { address: '10.0.0.5/24', interface: 'eth0;reboot' },
    ]) {
      expect(() => parseNetwork(bad)).toThrow(PlanError);
    }
  });

  it('renders ifupdown and systemd-networkd config', () => {
    const n = parseNetwork({ address: '10.0.0.5/24', gateway: '10.0.0.1', dns: ['1.1.1.1'], mac: '02:AA:bb:cc:dd:ee' });
    expect(interfacesFile(n)).toContain(
      'iface eth0 inet static\n    address 10.0.0.5\n    netmask 255.255.255.0\n    gateway 10.0.0.1\n',
    );
    expect(networkdFile(n)).toBe(
      '# Written by nqvm before boot: static address allocated by the manager.\n[Match]\nMACAddress=02:aa:bb:cc:dd:ee\n\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\nDNS=1.1.1.1\n',
    );
  });
});

describe('hostname and hosts', () => {
  it('validates hostnames', () => {
    expect(assertHostname('vm-1.example')).toBe('vm-1.example');
    for (const bad of ['-x', 'a_b', 'x\n127.0.0.1 evil', '', 'a'.repeat(64)])
      expect(() => assertHostname(bad)).toThrow(PlanError);
  });

  it('replaces the 127.0.1.1 line and keeps the rest', () => {
    const before = '127.0.0.1\tlocalhost\n127.0.1.1\told\n10.1.1.1 other\n';
    expect(hostsFile(before, 'vm1.lan')).toBe('127.0.0.1\tlocalhost\n10.1.1.1 other\n127.0.1.1\tvm1.lan vm1\n');
    expect(hostsFile(hostsFile(before, 'vm1'), 'vm1')).toBe(hostsFile(before, 'vm1'));
  });
});

describe('busybox inittab', () => {
  it('keeps existing entries, adds network after sysinit and a respawned agent, idempotently', () => {
    const tab = '::sysinit:/etc/init.d/rcS\n::respawn:/sbin/getty -L ttyS0 115200 vt100\n';
    const once = busyboxInittab(tab, { network: true, agent: true });
    expect(once).toBe(
      '::sysinit:/etc/init.d/rcS\n::sysinit:/etc/nqvm/network.sh\n::respawn:/sbin/getty -L ttyS0 115200 vt100\n::respawn:/etc/nqvm/run-agent.sh\n',
    );
    expect(busyboxInittab(once, { network: true, agent: true })).toBe(once);
  });

  it("writes busybox's defaults when the image has no inittab", () => {
    const tab = busyboxInittab(undefined, { network: false, agent: true });
    expect(tab).toContain('::sysinit:/etc/init.d/rcS\n');
    expect(tab).toContain('::askfirst:-/bin/sh\n');
    expect(tab.endsWith('::respawn:/etc/nqvm/run-agent.sh\n')).toBe(true);
  });
});

describe('guest agent files', () => {
  it('launches node through the shipped loader; tools-drive mode mounts the labelled drive first', () => {
    const exec =
      'exec /opt/nqvm/node/ld-linux-x86-64.so.2 --library-path /opt/nqvm/node /opt/nqvm/node/node /opt/nqvm/guest-agent.js';
    expect(runAgentScript('copy')).toContain(exec);
    expect(runAgentScript('copy')).not.toContain('mount');
    expect(runAgentScript('tools-drive')).toContain('LABEL=nqvm-tools /opt/nqvm');
    expect(runAgentScript('tools-drive')).toContain(exec);
  });

  it('renders the config and validates it', () => {
    expect(JSON.parse(agentConfigJson({ vm_id: 'v1', token: 't', host_url: 'http://10.0.0.1:19090' }))).toEqual({
      vm_id: 'v1',
      token: 't',
      host_url: 'http://10.0.0.1:19090',
      port: 9000,
    });
    expect(() => agentConfigJson({ vm_id: 'v1', token: 't', host_url: 'file:///etc/passwd' })).toThrow(PlanError);
    expect(() => agentConfigJson({ vm_id: 'v1', token: '', host_url: 'http://h' })).toThrow(PlanError);
  });
});

describe('parseLdd', () => {
  it('lists libraries and the loader, skipping the vdso', () => {
    const out = `\tlinux-vdso.so.1 (0x00007ffd)\n\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f03)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f03d1a11000)\n`;
    expect(parseLdd(out)).toEqual([
      { name: 'libstdc++.so.6', path: '/lib/x86_64-linux-gnu/libstdc++.so.6' },
      { name: 'ld-linux-x86-64.so.2', path: '/lib64/ld-linux-x86-64.so.2' },
    ]);
    expect(() => parseLdd('\tlibfoo.so => not found\n')).toThrow(RuntimeError);
    expect(() => parseLdd('')).toThrow(RuntimeError);
  });
});

describe('insservDepend', () => {
  // Debian bookworm's /etc/init.d/.depend.start right after debootstrap --include=sysvinit-core.
  const START =
    'TARGETS = killprocs bootlogs rmnologin single rc.local\nINTERACTIVE =\nsingle: killprocs\nrc.local: bootlogs rmnologin\n';

  it("adds the service to TARGETS, so Debian's startpar runs its rcN.d link, and keeps the dependency lines", () => {
    expect(insservDepend(START, 'nqvm-guest-agent')).toBe(
      'TARGETS = killprocs bootlogs rmnologin single rc.local nqvm-guest-agent\nINTERACTIVE =\nsingle: killprocs\nrc.local: bootlogs rmnologin\n',
    );
  });

  it('is idempotent', () => {
    const once = insservDepend(START, 'nqvm-guest-agent');
    expect(insservDepend(once, 'nqvm-guest-agent')).toBe(once);
  });

  it('adds a TARGETS line when there is none, and fills an empty one', () => {
    expect(insservDepend('INTERACTIVE =\n', 'svc')).toBe('TARGETS = svc\nINTERACTIVE =\n');
    expect(insservDepend('TARGETS =\n', 'svc')).toBe('TARGETS = svc\n');
  });
});
