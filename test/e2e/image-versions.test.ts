import { execFileSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_NETWORKS } from '../support/test-networks.ts';
import { type Stack, startStack, until } from './support/stack.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DEMO_ROOTFS = path.join(ROOT, '.cache', 'demo-images', 'rootfs.ext4');
/** Version 2 of the image prints this before its login prompt (busybox getty shows /etc/issue); version 1 does not. */
const MARK = 'nqvm-image-version-2';

interface Img {
  id: string;
  version: number;
  latest: boolean;
}
interface Vm {
  id: string;
  state: string;
  rootfs_image_id: string;
}

let s: Stack;
let dir: string;

/** Creates and starts a VM on `rootfsId`; resolves with its id once its console shows a login prompt. */
async function boot(name: string, rootfsId: string): Promise<string> {
  const created = await s.api<Vm>('POST', '/v1/vms', {
    name,
    vcpu: 1,
    mem_mib: 256,
    kernel_image_id: s.images.kernel,
    initrd_image_id: s.images.initrd,
    rootfs_image_id: rootfsId,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(202);
  await loginPrompt(created.body.id, 0);
  return created.body.id;
}

/** The console text after `from` once it shows getty's login prompt. */
async function loginPrompt(id: string, from: number): Promise<string> {
  return until(
    `${id} to show a login prompt`,
    async () => {
      const text = (await s.consoleText(id)).slice(from);
      return /login:/.test(text) ? text : undefined;
    },
    300_000,
  );
}

const latestOf = async (name: string) =>
  (await s.api<{ items: Img[] }>('GET', `/v1/images?name=${name}&latest=true`)).body.items[0]!;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'nqvm-image-versions-'));
  copyFileSync(DEMO_ROOTFS, path.join(dir, 'v1.ext4'));
  copyFileSync(DEMO_ROOTFS, path.join(dir, 'v2.ext4'));
  writeFileSync(path.join(dir, 'issue'), `${MARK}\n`);
  execFileSync('debugfs', ['-w', '-R', `write ${path.join(dir, 'issue')} /etc/issue`, path.join(dir, 'v2.ext4')], {
    stdio: 'ignore',
  });
  s = await startStack({
    ...TEST_NETWORKS.imageVersions,
    env: { MANAGER_IMAGE_ROOT: dir, MANAGER_ALLOW_IMAGE_PATHS: 'true' },
  });
}, 300_000);
afterAll(async () => {
  await s?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('image versions with real VMs (demo kernel, real QEMU)', () => {
  it('a VM pinned to version 1 keeps booting version 1 after version 2 is imported and latest is rolled back', async () => {
    const importAs = async (file: string) => {
      const r = await s.api<Img>('POST', '/v1/images', {
        name: 'appliance',
        kind: 'rootfs',
        source: { type: 'path', path: file },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body;
    };
    const v1 = await importAs('v1.ext4');
    const pinned = await boot('pinned-v1', (await latestOf('appliance')).id);

    const v2 = await importAs('v2.ext4');
    expect(v2).toMatchObject({ version: 2, latest: true });
    const onLatest = await boot('on-v2', (await latestOf('appliance')).id);
    expect(await s.consoleText(onLatest)).toContain(MARK);
    expect(await s.consoleText(pinned)).not.toContain(MARK);

    // Restarted after version 2 became latest, the pinned VM still boots version 1.
    const stop = await s.api('POST', `/v1/vms/${pinned}/stop`);
    expect(stop.status, JSON.stringify(stop.body)).toBeLessThan(300);
    expect((await s.api<Vm>('GET', `/v1/vms/${pinned}/wait?state=stopped&timeout=120`)).status).toBe(200);
    const before = (await s.consoleText(pinned)).length;
    expect((await s.api('POST', `/v1/vms/${pinned}/start`)).status).toBeLessThan(300);
    expect(await loginPrompt(pinned, before)).not.toContain(MARK);
    expect((await s.api<Vm>('GET', `/v1/vms/${pinned}`)).body.rootfs_image_id).toBe(v1.id);

    // Rolled back, the name resolves to version 1 again: a new VM on latest boots it.
    const back = await s.api<Img>('POST', `/v1/images/${v1.id}/rollback`);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect((await latestOf('appliance')).id).toBe(v1.id);
    const afterRollback = await boot('after-rollback', (await latestOf('appliance')).id);
    expect(await s.consoleText(afterRollback)).not.toContain(MARK);

    // Version 1 is in use by two VMs, named in the refusal.
    const del = await s.api<{ code: string; used_by: string[] }>('DELETE', `/v1/images/${v1.id}`);
    expect(del.status).toBe(409);
    expect(del.body).toMatchObject({ code: 'image_in_use', used_by: ['vm:after-rollback', 'vm:pinned-v1'] });
  });
});
