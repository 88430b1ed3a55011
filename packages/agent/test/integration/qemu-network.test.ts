import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runChecked, systemRunner } from '../../src/host/exec.js';
import { READY_MARKER } from '../../src/images/demo/index.js';
import { QemuDriver } from '../../src/vmm/qemu/index.js';
import type { VmmHandle } from '../../src/vmm/types.js';
import { demoImages, demoSpec, vmPaths, waitForLog } from '../fixtures/demo-vm.js';

// Bridge, TAP and guest all live in a namespace of their own; nothing touches the host network.
const ns = `nqvm-test-${randomBytes(4).toString('hex')}`;
const ip = (...args: string[]) => runChecked(systemRunner, 'ip', ['-n', ns, ...args]);
let handle: VmmHandle | undefined;
const driver = new QemuDriver({ launchPrefix: ['ip', 'netns', 'exec', ns] });

beforeAll(async () => {
  await runChecked(systemRunner, 'ip', ['netns', 'add', ns]);
  await ip('link', 'set', 'lo', 'up');
  await ip('link', 'add', 'br0', 'type', 'bridge');
  await ip('addr', 'add', '10.77.0.1/24', 'dev', 'br0');
  await ip('link', 'set', 'br0', 'up');
  await ip('tuntap', 'add', 'dev', 'tap0', 'mode', 'tap');
  await ip('link', 'set', 'tap0', 'master', 'br0');
  await ip('link', 'set', 'tap0', 'up');
});

afterAll(async () => {
  if (handle) {
    await driver.kill(handle);
    await rm(handle.paths.dir, { recursive: true, force: true });
  }
  await runChecked(systemRunner, 'ip', ['netns', 'del', ns]);
});

test('a guest on a TAP takes its address from the kernel command line and reaches the bridge', async () => {
  const images = await demoImages();
  const paths = await vmPaths();
  const spec = await demoSpec(
    images,
    paths,
    'net-guest',
    'ip=10.77.0.2::10.77.0.1:255.255.255.0:guest1:eth0:off nqvm.ping=10.77.0.1',
  );
  spec.nics = [{ iface_id: 'eth0', tap: 'tap0', mac: '02:fc:00:00:00:02' }];
  handle = await driver.launch(spec, paths);
  const console = await waitForLog(paths.consoleLog, (t) => (/nqvm: ping 10\.77\.0\.1 \w+/.test(t) ? t : null), 90_000);
  expect(console).toContain('nqvm: net eth0 10.77.0.2/24 gw 10.77.0.1');
  expect(console).toContain(READY_MARKER);
  expect(console).toContain('nqvm: ping 10.77.0.1 ok');
  expect(console).toContain('guest1 login:');
  // the host side saw the guest's MAC on the bridge port
  const neigh = await ip('neigh', 'show', 'dev', 'br0');
  expect(neigh).toContain('02:fc:00:00:00:02');
});
