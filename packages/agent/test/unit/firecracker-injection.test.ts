import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildJailerArgv,
  buildLaunchPlan,
  FirecrackerDriver,
  fc,
  InvalidFirecrackerValue,
  jailRoot,
} from '../../src/vmm/firecracker/index.js';
import type { VmLaunchSpec, VmPaths } from '../../src/vmm/types.js';

const work = mkdtempSync(path.join(tmpdir(), 'nqvm-fc-inj-'));
const MARK = path.join(work, 'MARK');
afterAll(() => rmSync(work, { recursive: true, force: true }));

const payloads = [
  `$(touch ${MARK})`,
  `\`touch ${MARK}\``,
  `x;touch ${MARK}`,
  `x && touch ${MARK}`,
  `;rm -rf /`,
  'a|b',
  'a b',
  'a\nb',
  '../../actions',
  'x%2F..',
  '',
];
// Ids are also bounded in length (Firecracker and the jailer take at most 64 characters).
const idPayloads = [...payloads, 'a'.repeat(65)];

const paths = (dir: string): VmPaths => ({
  dir,
  pidFile: `${dir}/vmm.pid`,
  controlSocket: `${dir}/api.sock`,
  consoleSocket: `${dir}/console.sock`,
  consoleLog: `${dir}/console.log`,
  vmmLog: `${dir}/vmm.log`,
});

const base: VmLaunchSpec = {
  vm_id: 'vm-1',
  vcpu: 1,
  mem_mib: 128,
  smt: false,
  cpu_template: 'None',
  kernel_path: '/images/vmlinux',
  boot_args: 'console=ttyS0',
  drives: [
    {
      drive_id: 'rootfs',
      path: '/images/root.ext4',
      is_root_device: true,
      is_read_only: true,
      cache_type: 'Unsafe',
      io_engine: 'Sync',
    },
  ],
  nics: [{ iface_id: 'eth0', tap: 'nqtap0', mac: '06:00:00:00:00:01' }],
};

const variants: [string, (p: string) => [VmLaunchSpec, VmPaths], string[]?][] = [
  ['vm_id', (p) => [{ ...base, vm_id: p }, paths(`${work}/vm`)], idPayloads],
  ['drive_id', (p) => [{ ...base, drives: [{ ...base.drives[0]!, drive_id: p }] }, paths(`${work}/vm`)], idPayloads],
  ['drive path', (p) => [{ ...base, drives: [{ ...base.drives[0]!, path: `/images/${p}` }] }, paths(`${work}/vm`)]],
  ['kernel path', (p) => [{ ...base, kernel_path: `/images/${p}` }, paths(`${work}/vm`)]],
  ['iface_id', (p) => [{ ...base, nics: [{ ...base.nics[0]!, iface_id: p }] }, paths(`${work}/vm`)], idPayloads],
  ['tap', (p) => [{ ...base, nics: [{ ...base.nics[0]!, tap: p }] }, paths(`${work}/vm`)], idPayloads],
  ['mac', (p) => [{ ...base, nics: [{ ...base.nics[0]!, mac: p }] }, paths(`${work}/vm`)], idPayloads],
  ['snapshot path', (p) => [{ ...base, incoming_state_path: `/snaps/${p}` }, paths(`${work}/vm`)]],
  ['vm dir', (p) => [base, paths(`${work}/${p}`)]],
];

describe('values reaching argv or URL paths are refused unless strictly safe', () => {
  for (const [field, make, list] of variants) {
    it(`${field}: every payload is refused by the launch plan`, () => {
      for (const p of list ?? payloads) {
        const [spec, vmPaths] = make(p);
        expect(() => buildLaunchPlan(spec, vmPaths), `${field}=${JSON.stringify(p)}`).toThrow(InvalidFirecrackerValue);
      }
    });
  }

  it('launch() refuses before spawning anything, so the MARK file is never created', async () => {
    const driver = new FirecrackerDriver({ binary: '/bin/sh' });
    for (const p of payloads) {
      await expect(driver.launch({ ...base, vm_id: p }, paths(`${work}/vm`))).rejects.toThrow(InvalidFirecrackerValue);
      await expect(driver.launch(base, paths(`${work}/${p}`))).rejects.toThrow(InvalidFirecrackerValue);
    }
    expect(existsSync(MARK)).toBe(false);
    expect(existsSync(`${work}/vm`)).toBe(false);
  });

  it('URL path ids cannot escape their route', () => {
    for (const p of idPayloads) {
      expect(() => fc.putDrive({ drive_id: p, is_root_device: false })).toThrow(InvalidFirecrackerValue);
      expect(() => fc.patchNetworkInterface({ iface_id: p })).toThrow(InvalidFirecrackerValue);
    }
    expect(fc.putDrive({ drive_id: 'data_2-b', is_root_device: false }).path).toBe('/drives/data_2-b');
  });

  it('adopt refuses a hostile vm id', async () => {
    await expect(new FirecrackerDriver().adopt(`$(touch ${MARK})`, paths(`${work}/vm`))).rejects.toThrow(
      InvalidFirecrackerValue,
    );
    expect(existsSync(MARK)).toBe(false);
  });

  it('a Unix socket path longer than sun_path allows is refused', () => {
    const long = `/tmp/${'d'.repeat(110)}`;
    expect(() => buildLaunchPlan(base, { ...paths(long), controlSocket: `${long}/api.sock` })).toThrow(/107 bytes/);
  });
});

describe('jailer argv', () => {
  const jailer = {
    binary: '/usr/bin/jailer',
    uid: 1234,
    gid: 1234,
    netns: '/var/run/netns/nqvm-vm1',
    daemonize: true,
    newPidNs: true,
  };

  it('follows the jailer usage, firecracker arguments after --', () => {
    expect(buildJailerArgv(jailer, 'vm-1', '/usr/bin/firecracker', ['--api-sock', '/run/firecracker.socket'])).toEqual([
      '--id',
      'vm-1',
      '--exec-file',
      '/usr/bin/firecracker',
      '--uid',
      '1234',
      '--gid',
      '1234',
      '--chroot-base-dir',
      '/srv/jailer',
      '--netns',
      '/var/run/netns/nqvm-vm1',
      '--daemonize',
      '--new-pid-ns',
      '--',
      '--api-sock',
      '/run/firecracker.socket',
    ]);
    expect(jailRoot(jailer, 'vm-1', '/usr/bin/firecracker')).toBe('/srv/jailer/firecracker/vm-1/root');
  });

  it('refuses hostile ids, paths and ids the jailer itself rejects', () => {
    for (const p of [...idPayloads, 'under_score']) {
      expect(() => buildJailerArgv(jailer, p, '/usr/bin/firecracker', [])).toThrow(InvalidFirecrackerValue);
    }
    for (const p of payloads) {
      expect(() =>
        buildJailerArgv({ ...jailer, netns: `/var/run/netns/${p}` }, 'vm-1', '/usr/bin/firecracker', []),
      ).toThrow(InvalidFirecrackerValue);
      expect(() =>
        buildJailerArgv({ ...jailer, chrootBaseDir: `/srv/${p}` }, 'vm-1', '/usr/bin/firecracker', []),
      ).toThrow(InvalidFirecrackerValue);
    }
    expect(() => buildJailerArgv({ ...jailer, uid: -1 }, 'vm-1', '/usr/bin/firecracker', [])).toThrow(
      InvalidFirecrackerValue,
    );
  });
});
