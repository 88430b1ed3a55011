import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { AgentImageRef, AgentVmSpec } from '@nqvm/api';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inPrivateNetns } from '../../../../test/e2e/support/stack.ts';
import { systemRunner } from '../../src/host/exec.ts';
import { ImageCache } from '../../src/images/cache.ts';
import type { DemoImages } from '../../src/images/demo/index.ts';
import { HostNetwork } from '../../src/net/host-network.ts';
import { tapNameFor } from '../../src/net/names.ts';
import { detectCgroups, VmmCgroups } from '../../src/vmm/cgroups.ts';
import { isProcessAlive, QemuDriver } from '../../src/vmm/qemu/index.ts';
import { GuestTools } from '../../src/vms/guest-tools.ts';
import { VmService } from '../../src/vms/vms.service.ts';
import { demoImages, waitForLog } from '../fixtures/demo-vm.ts';

// A VMM started by the agent, seen from the host as an attacker inside it would find itself: an unprivileged user of
// its own, no capabilities, seccomp on, an empty environment, only its own descriptors, a cgroup with the VM's limits.
const BRIDGE = 'nqbr-sbx';
const USERS = { base: 910_000, count: 1000 };
const net = new HostNetwork({ runner: systemRunner });
let dir: string;
let images: DemoImages;
const refs: Record<string, AgentImageRef> = {};
const files: Record<string, string> = {};
const started: number[] = [];

const service = () =>
  new VmService({
    dataDir: dir,
    drivers: new Map([['qemu', new QemuDriver()]]),
    network: net,
    images: new ImageCache(
      path.join(dir, 'images'),
      async (id) => Readable.toWeb(createReadStream(files[id]!)) as ReadableStream<Uint8Array>,
    ),
    guestTools: new GuestTools(path.join(dir, 'guest-tools'), systemRunner),
    guestPort: 19098,
    guestEndpoint: async () => undefined,
    reportExit: async () => undefined,
    log: pino({ level: 'silent' }),
    vmmUsers: USERS,
  });

function specFor(id: string): AgentVmSpec {
  return {
    vm_id: id,
    name: 'sandboxed',
    vmm: 'qemu',
    vcpu: 1,
    mem_mib: 128,
    smt: false,
    cpu_template: 'None',
    boot_args: '',
    kernel: refs.kernel!,
    initrd: refs.initrd!,
    rootfs: refs.rootfs!,
    nics: [{ iface_id: 'eth0', mac: '02:fc:00:00:0b:02', ip: '10.232.0.2/24', gateway: '10.232.0.1', bridge: BRIDGE }],
    guest: { hostname: 'sandboxed', token: `token-${id}`, install_agent: false },
  };
}

async function procStatus(pid: number): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const line of (await readFile(`/proc/${pid}/status`, 'utf8')).split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Socket inodes of every TCP and UDP socket in this network namespace. */
async function inetSocketInodes(): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6', 'udp', 'udp6']) {
    const text = await readFile(`/proc/net/${table}`, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) inodes.add(inode);
    }
  }
  return inodes;
}

beforeAll(async () => {
  expect(inPrivateNetns()).toBe(true);
  images = await demoImages();
  dir = await mkdtemp(path.join(tmpdir(), 'nqvm-sandbox-'));
  for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
    const file = images[kind];
    const sha256 = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    const id = randomUUID();
    refs[kind] = { image_id: id, sha256, size_bytes: (await stat(file)).size };
    files[id] = file;
  }
});

afterAll(async () => {
  // A failed assertion leaves its VMM running: only the ones this file started are killed.
  for (const pid of started) if (await isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  await net.deleteBridge(BRIDGE).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a VMM started by the agent is confined', () => {
  it('runs as its own user without capabilities under seccomp, in its cgroup, and is re-adopted after a restart', async () => {
    const id = randomUUID();
    const vms = service();
    const { pid } = await vms.boot(specFor(id));
    expect(pid).toBeGreaterThan(1);
    started.push(pid!);
    const vmDir = path.join(dir, 'vms', id);
    const recorded = JSON.parse(await readFile(path.join(vmDir, 'vmm-user.json'), 'utf8')) as { uid: number };
    expect(recorded.uid).toBeGreaterThanOrEqual(USERS.base);
    expect(recorded.uid).toBeLessThan(USERS.base + USERS.count);

    const status = await procStatus(pid!);
    expect(status.Uid!.split(/\s+/)).toEqual(Array(4).fill(String(recorded.uid)));
    expect(status.Gid!.split(/\s+/)).toEqual(Array(4).fill(String(recorded.uid)));
    expect(status.Groups).toBe('');
    expect(status.CapEff).toBe('0000000000000000');
    expect(status.CapPrm).toBe('0000000000000000');
    expect(status.Seccomp).toBe('2');
    expect(status.NoNewPrivs).toBe('1');
    expect(await readFile(`/proc/${pid}/environ`, 'utf8')).toBe('');

    // Only its own descriptors: stdin on /dev/null, output to its log, no socket of ours (the test runner's, say).
    const fdDir = `/proc/${pid}/fd`;
    const targets = await Promise.all((await readdir(fdDir)).map((fd) => readlink(path.join(fdDir, fd))));
    expect(await readlink(`${fdDir}/0`)).toBe('/dev/null');
    expect(await readlink(`${fdDir}/1`)).toBe(path.join(vmDir, 'vmm.log'));
    const inet = await inetSocketInodes();
    for (const t of targets) {
      if (t.startsWith('/')) expect(t.startsWith(`${vmDir}/`) || t.startsWith('/dev/'), t).toBe(true);
      const inode = /^socket:\[(\d+)\]$/.exec(t)?.[1];
      if (inode) expect(inet.has(inode), t).toBe(false);
    }

    // Its cgroup holds the VM's limits: one vCPU of quota, guest RAM plus the VMM's allowance.
    const layout = await detectCgroups();
    expect(layout).not.toBeNull();
    const cgroups = new VmmCgroups(layout!);
    const limits = await cgroups.read(id);
    expect(limits.cpuQuotaUs).toBe(limits.cpuPeriodUs);
    expect(limits.memoryBytes).toBe((128 + 256 + 256) * 1024 * 1024);
    const procCgroup = await readFile(`/proc/${pid}/cgroup`, 'utf8');
    if (layout!.version === 1) {
      expect(procCgroup).toMatch(new RegExp(`:cpu(,[a-z]+)*:/nqvm/${id}$`, 'm'));
      expect(procCgroup).toMatch(new RegExp(`:memory:/nqvm/${id}$`, 'm'));
      if (layout!.devices) {
        expect(procCgroup).toMatch(new RegExp(`:devices:/nqvm/${id}$`, 'm'));
        const allowed = (await readFile(path.join(layout!.root, 'devices', 'nqvm', id, 'devices.list'), 'utf8'))
          .trim()
          .split('\n')
          .sort();
        // null, zero, random, urandom and the TUN device: nothing else (no /dev/kvm under TCG, no disks).
        expect(allowed).toEqual(['c 1:3 rwm', 'c 1:5 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 10:200 rwm'].sort());
      }
    } else expect(procCgroup).toContain(`0::/nqvm/${id}`);

    // Its directory is only passable by its group; its files are its own; the agent's files and sockets are root's.
    const dirStat = await stat(vmDir);
    expect([dirStat.uid, dirStat.gid, dirStat.mode & 0o777]).toEqual([0, recorded.uid, 0o710]);
    for (const name of ['rootfs.ext4', 'console.log', 'vmm.log', 'guest.ram', 'vmm.pid']) {
      const s = await stat(path.join(vmDir, name));
      expect([name, s.uid, s.gid, s.mode & 0o777]).toEqual([name, recorded.uid, recorded.uid, 0o600]);
    }
    for (const name of ['spec.json', 'control.sock', 'console.sock'])
      expect((await stat(path.join(vmDir, name))).uid).toBe(0);

    // The TAP is the VMM's to open: owned by its user.
    const tap = tapNameFor(id, 0);
    const shown = await systemRunner.run('ip', ['-d', '-j', 'link', 'show', 'dev', tap]);
    const info = (JSON.parse(shown.stdout) as { linkinfo?: { info_data?: Record<string, unknown> } }[])[0]?.linkinfo
      ?.info_data;
    expect(String(info?.user)).toBe(String(recorded.uid));

    // Console and QMP work through the sockets the agent bound for it.
    await waitForLog(path.join(vmDir, 'console.log'), (t) => t.includes('sandboxed login:'), 90_000);
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = createConnection(path.join(vmDir, 'console.sock'));
      let got = '';
      s.on('data', (b) => {
        got += b.toString('utf8');
        if (got.includes('login:')) {
          s.destroy();
          resolve(got);
        }
      });
      s.on('error', reject);
      s.on('connect', () => s.write('\r'));
    });
    expect(echoed).toContain('login:');
    expect(await new QemuDriver().state({ vmId: id, pid: pid!, paths: { ...vmsPaths(vmDir) } })).toBe('running');

    // An agent restart: a new service re-adopts the same process, still confined.
    await vms.settle();
    const restarted = service();
    await restarted.restore();
    expect(restarted.get(id)).toMatchObject({ state: 'running', pid });
    await restarted.remove(id);
    expect(await isProcessAlive(pid!)).toBe(false);
    for (const d of cgroups.dirs(id)) await expect(stat(d)).rejects.toThrow(/ENOENT/);
  }, 150_000);
});

function vmsPaths(vmDir: string) {
  return {
    dir: vmDir,
    pidFile: path.join(vmDir, 'vmm.pid'),
    controlSocket: path.join(vmDir, 'control.sock'),
    consoleSocket: path.join(vmDir, 'console.sock'),
    consoleLog: path.join(vmDir, 'console.log'),
    vmmLog: path.join(vmDir, 'vmm.log'),
  };
}
