import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
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
import { QemuDriver } from '../../src/vmm/qemu/index.ts';
import { GuestTools } from '../../src/vms/guest-tools.ts';
import { VmService } from '../../src/vms/vms.service.ts';
import { demoImages, waitForLog } from '../fixtures/demo-vm.ts';

// The boot order the agent promises for a QEMU cold boot, seen on a real VM: the agent makes a bare TAP for the VMM's
// user, the TAP is guarded before it joins the bridge, and the guest runs only once its rootfs edit is written.
const BRIDGE = 'nqbr-order';
const net = new HostNetwork({ runner: systemRunner });
let dir: string;
let images: DemoImages;
let vms: VmService;
const refs: Record<string, AgentImageRef> = {};
const paths: Record<string, string> = {};
const seenAtGuard: { exists: boolean; master: string | null }[] = [];

async function link(name: string): Promise<{ master: string | null; up: boolean } | null> {
  const res = await systemRunner.run('ip', ['-j', 'link', 'show', 'dev', name]);
  if (res.code !== 0) return null;
  const [l] = JSON.parse(res.stdout) as { master?: string; flags?: string[] }[];
  return { master: l?.master ?? null, up: !!l?.flags?.includes('UP') };
}

function specFor(id: string, hostname: string, ip: string, mac: string): AgentVmSpec {
  return {
    vm_id: id,
    name: hostname,
    vmm: 'qemu',
    vcpu: 1,
    mem_mib: 128,
    smt: false,
    cpu_template: 'None',
    boot_args: '',
    kernel: refs.kernel!,
    initrd: refs.initrd!,
    rootfs: refs.rootfs!,
    nics: [{ iface_id: 'eth0', mac, ip, gateway: '10.231.0.1', bridge: BRIDGE }],
    guest: { hostname, token: `token-${id}`, install_agent: false },
  };
}

beforeAll(async () => {
  expect(inPrivateNetns()).toBe(true);
  images = await demoImages();
  dir = await mkdtemp(path.join(tmpdir(), 'nqo-'));
  for (const kind of ['kernel', 'initrd', 'rootfs'] as const) {
    const file = images[kind];
    const sha256 = createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
    const id = randomUUID();
    refs[kind] = { image_id: id, sha256, size_bytes: (await stat(file)).size };
    paths[id] = file;
  }
  vms = new VmService({
    dataDir: dir,
    drivers: new Map([['qemu', new QemuDriver()]]),
    network: net,
    images: new ImageCache(
      path.join(dir, 'images'),
      async (id) => Readable.toWeb(createReadStream(paths[id]!)) as ReadableStream<Uint8Array>,
    ),
    guestTools: new GuestTools(path.join(dir, 'guest-tools'), systemRunner),
    guestPort: 19099,
    guestEndpoint: async () => undefined,
    reportExit: async () => undefined,
    log: pino({ level: 'silent' }),
    hooks: {
      nicsPlanned: async (_spec, taps) => {
        const l = await link(taps[0]!);
        seenAtGuard.push({ exists: l !== null, master: l?.master ?? null });
      },
    },
  });
});

afterAll(async () => {
  await vms?.settle();
  await net.deleteBridge(BRIDGE).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('a QEMU cold boot through the VM service', () => {
  it('guards the TAP made for the VMM before it joins the bridge, and runs the guest with its rootfs edited', async () => {
    const id = randomUUID();
    const spec = specFor(id, 'order-guest', '10.231.0.2/24', '02:fc:00:00:0a:02');
    const status = await vms.boot(spec);
    expect(status.state).toBe('running');
    // At guard time the TAP existed and was on no bridge: nothing it carried could reach another VM.
    expect(seenAtGuard).toEqual([{ exists: true, master: null }]);
    const tap = tapNameFor(id, 0);
    expect(await link(tap)).toEqual({ master: BRIDGE, up: true });
    // The hostname the agent wrote into the rootfs while QEMU waited is the one the guest boots with.
    const consoleLog = path.join(dir, 'vms', id, 'console.log');
    await waitForLog(consoleLog, (t) => t.includes('order-guest login:'), 90_000);

    await vms.remove(id);
    expect(await link(tap)).toBeNull();
  }, 150_000);

  it('fails with the rootfs error when the edit fails while QEMU waits, and leaves no VMM, TAP or directory', async () => {
    const id = randomUUID();
    const spec = specFor(id, 'bad_hostname!', '10.231.0.3/24', '02:fc:00:00:0a:03');
    await expect(vms.boot(spec)).rejects.toThrow(/rootfs preparation failed at hostname/);
    const ps = await systemRunner.run('pgrep', ['-f', `nqvm-${id}`]);
    expect(ps.stdout.trim()).toBe('');
    expect(await link(tapNameFor(id, 0))).toBeNull();
    await expect(stat(path.join(dir, 'vms', id))).rejects.toThrow(/ENOENT/);
  }, 60_000);
});
