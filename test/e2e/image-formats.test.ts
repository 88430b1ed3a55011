import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO_ROOTFS = path.join(ROOT, '.cache', 'demo-images', 'rootfs.ext4');

interface Vm {
  id: string;
  guest_ip: string | null;
  guest_ready_at: string | null;
}

let s: Stack;
let dir: string;

/** Creates and starts a VM on the demo kernel/initrd and `rootfsId`; resolves once its guest agent reports ready. */
async function bootOn(name: string, rootfsId: string, extra: Record<string, unknown> = {}): Promise<Vm> {
  const created = await s.api<Vm>('POST', '/v1/vms', {
    name,
    vcpu: 1,
    mem_mib: 256,
    kernel_image_id: s.images.kernel,
    initrd_image_id: s.images.initrd,
    rootfs_image_id: rootfsId,
    ...extra,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  const id = created.body.id;
  return until(
    `${name} to report ready`,
    async () => {
      const r = (await s.api<Vm>('GET', `/v1/vms/${id}`)).body;
      return r.guest_ready_at ? r : undefined;
    },
    300_000,
  ).catch(async (err) => {
    throw new Error(`${err}\nconsole tail:\n${(await s.consoleText(id)).slice(-3000)}`);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nqvm-image-formats-'));
  s = await startStack({
    ...TEST_NETWORKS.imageFormats,
    env: { MANAGER_IMAGE_ROOT: dir, MANAGER_ALLOW_IMAGE_PATHS: 'true' },
  });
}, 300_000);
afterAll(async () => {
  await s?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('disk formats boot real VMs (demo kernel, real QEMU)', () => {
  it('a qcow2 made by qemu-img convert from the demo rootfs and an xz-compressed raw rootfs both import and boot', async () => {
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', DEMO_ROOTFS, path.join(dir, 'demo.qcow2')]);
    const qcow2 = await s.api<{ id: string; sha256: string; size_bytes: number }>('POST', '/v1/images', {
      name: 'demo-qcow2',
      kind: 'rootfs',
      source: { type: 'path', path: 'demo.qcow2' },
    });
    expect(qcow2.status, JSON.stringify(qcow2.body)).toBe(201);

    const xz = execFileSync('xz', ['-c', '-1', '-T1', DEMO_ROOTFS], { maxBuffer: 128 * 1024 * 1024 });
    const res = await fetch(`${s.base}/v1/images/upload?name=demo-raw-xz&kind=rootfs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/octet-stream' },
      body: xz,
    });
    const xzImage = (await res.json()) as { id: string; sha256: string; size_bytes: number };
    expect(res.status, JSON.stringify(xzImage)).toBe(201);

    // Both hold exactly the demo rootfs, byte for byte, as the uploaded raw demo image does.
    const demo = (await s.api<{ sha256: string; size_bytes: number }>('GET', `/v1/images/${s.images.rootfs}`)).body;
    expect(qcow2.body).toMatchObject({ sha256: demo.sha256, size_bytes: readFileSync(DEMO_ROOTFS).length });
    expect(xzImage).toMatchObject({ sha256: demo.sha256, size_bytes: demo.size_bytes });

    const [a, b] = await Promise.all([bootOn('from-qcow2', qcow2.body.id), bootOn('from-xz', xzImage.id)]);
    expect(a.guest_ip).toMatch(/^10\.233\.0\.\d+$/);
    expect(b.guest_ip).toMatch(/^10\.233\.0\.\d+$/);
  });

  it('a VM created with user_data boots with a cidata seed drive whose network config is its allocated address', async () => {
    const userData = '#cloud-config\nusers:\n  - name: ada\n';
    const vm = await bootOn('with-seed', s.images.rootfs, { user_data: userData, meta_data: { zone: 'lab' } });
    const iso = path.join(s.agentData, 'vms', vm.id, 'cidata.iso');
    const read = (name: string) => execFileSync('isoinfo', ['-R', '-i', iso, '-x', `/${name}`], { encoding: 'utf8' });
    expect(read('user-data')).toBe(userData);
    expect(JSON.parse(read('meta-data'))).toMatchObject({
      'instance-id': vm.id,
      'local-hostname': 'with-seed',
      zone: 'lab',
    });
    const net = JSON.parse(read('network-config'));
    expect(net.ethernets.eth0.addresses[0]).toBe(`${vm.guest_ip}/24`);
    expect(net.ethernets.eth0.routes[0].via).toBe('10.233.0.1');
    // QEMU has the seed as a read-only drive.
    const pid = readFileSync(path.join(s.agentData, 'vms', vm.id, 'vmm.pid'), 'utf8').trim();
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    expect(cmdline.some((a) => a.includes('cidata.iso') && a.includes('readonly=on'))).toBe(true);
  });
});
