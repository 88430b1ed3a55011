import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { expect, test } from 'vitest';
import { runChecked, systemRunner } from '../../src/host/exec.js';
import { demoImages } from '../fixtures/demo-vm.js';

const debugfsCat = (image: string, file: string) => runChecked(systemRunner, 'debugfs', ['-R', `cat ${file}`, image]);

test('builds the demo kernel, initramfs and rootfs once, then returns the cached build', async () => {
  const first = await demoImages();
  const started = performance.now();
  const again = await demoImages();
  expect(performance.now() - started).toBeLessThan(3000);
  expect(again).toEqual(first);
  expect(first.version).toMatch(/^6\.1\.0-\d+-cloud-amd64-[0-9a-f]{12}$/);

  const kernel = await readFile(first.kernel);
  expect(kernel.subarray(0x202, 0x206).toString('latin1')).toBe('HdrS');
  const initrd = gunzipSync(await readFile(first.initrd)).toString('latin1');
  expect(initrd.startsWith('070701')).toBe(true);
  for (const name of ['init', 'virtio_mmio.ko', 'virtio_blk.ko', 'virtio_net.ko', 'bin/busybox']) {
    expect(initrd).toContain(name);
  }

  expect(await debugfsCat(first.rootfs, '/etc/inittab')).toContain('ttyS0::respawn:/sbin/getty');
  expect(await debugfsCat(first.rootfs, '/etc/init.d/rcS')).toContain('nqvm: userspace ready');
  expect(await debugfsCat(first.rootfs, '/etc/shadow')).toMatch(/^root:\*:/);
  const modulesDep = await debugfsCat(first.rootfs, `/lib/modules/${first.kernelRelease}/modules.dep`);
  expect(modulesDep).toMatch(/virtio_balloon\.ko:/);
  expect(modulesDep).toMatch(/virtio-rng\.ko:/);
});
