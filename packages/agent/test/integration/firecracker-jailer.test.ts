import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { detectCgroups } from '../../src/vmm/cgroups.js';
import { FirecrackerDriver } from '../../src/vmm/firecracker/index.js';
import type { VmLaunchSpec, VmmHandle } from '../../src/vmm/types.js';
import type { RecordedRequest } from '../support/firecracker-standin.js';

// Firecracker always starts under its jailer when one exists: checked on the argv the jailer stand-in records and on
// what the Firecracker stand-in behind it was told (every path inside the chroot).
const support = path.join(path.dirname(fileURLToPath(import.meta.url)), '../support');
const work = mkdtempSync('/tmp/nqvm-jail-');
const user = { uid: 920_001, gid: 920_001 };
const launched: { driver: FirecrackerDriver; handle: VmmHandle }[] = [];

afterAll(async () => {
  for (const { driver, handle } of launched) await driver.kill(handle).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

describe('FirecrackerDriver under the jailer', () => {
  it('runs firecracker through the jailer as the VM user, in a PID namespace and cgroup, with a filled chroot', async () => {
    const vmDir = path.join(work, 'vm');
    const images = path.join(work, 'images');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(vmDir, { recursive: true });
    await mkdir(images, { recursive: true });
    for (const f of [path.join(images, 'vmlinux'), path.join(vmDir, 'rootfs.ext4')]) await writeFile(f, 'x');
    const spec: VmLaunchSpec = {
      vm_id: 'vm-jailed',
      vcpu: 2,
      mem_mib: 256,
      smt: false,
      cpu_template: 'None',
      kernel_path: path.join(images, 'vmlinux'),
      boot_args: 'console=ttyS0 reboot=k panic=1',
      drives: [
        {
          drive_id: 'rootfs',
          path: path.join(vmDir, 'rootfs.ext4'),
          is_root_device: true,
          is_read_only: false,
          cache_type: 'Writeback',
          io_engine: 'Sync',
        },
      ],
      nics: [],
    };
    const paths = {
      dir: vmDir,
      pidFile: `${vmDir}/vmm.pid`,
      controlSocket: `${vmDir}/api.sock`,
      consoleSocket: `${vmDir}/console.sock`,
      consoleLog: `${vmDir}/console.log`,
      vmmLog: `${vmDir}/vmm.log`,
    };
    const base = path.join(work, 'jails');
    const driver = new FirecrackerDriver({
      binary: path.join(support, 'firecracker-standin-bin'),
      jailer: { binary: path.join(support, 'jailer-standin-bin'), chrootBaseDir: base },
      socketTimeoutMs: 20_000,
    });
    const handle = await driver.launch(spec, paths, { user });
    launched.push({ driver, handle });

    const jailDir = path.join(base, 'firecracker-standin-bin', 'vm-jailed');
    const argv = JSON.parse(await readFile(path.join(jailDir, 'jailer-argv.json'), 'utf8')) as string[];
    const layout = await detectCgroups();
    const cgroups =
      layout?.version === 2
        ? ['--cgroup-version', '2', '--cgroup', 'cpu.max=200000 100000', '--cgroup', `memory.max=${512 * 1024 * 1024}`]
        : layout
          ? [
              ...['--cgroup-version', '1'],
              ...['--cgroup', 'cpu.cfs_period_us=100000', '--cgroup', 'cpu.cfs_quota_us=200000'],
              ...['--cgroup', `memory.limit_in_bytes=${512 * 1024 * 1024}`],
            ]
          : [];
    expect(argv).toEqual([
      ...['--id', 'vm-jailed', '--exec-file', path.join(support, 'firecracker-standin-bin')],
      ...['--uid', String(user.uid), '--gid', String(user.gid), '--chroot-base-dir', base],
      '--new-pid-ns',
      ...cgroups.slice(0, 2),
      ...['--parent-cgroup', 'nqvm'],
      ...cgroups.slice(2),
      ...['--', '--api-sock', '/run/firecracker.socket'],
    ]);

    // The pid is Firecracker's (the jailer's child in its namespace), and its API answers through the chroot.
    expect(await driver.state(handle)).toBe('running');
    const cmdline = (await readFile(`/proc/${handle.pid}/cmdline`, 'utf8')).split('\0');
    expect(cmdline).toContain('/run/firecracker.socket');
    const root = path.join(jailDir, 'root');
    const requests = (await readFile(path.join(root, 'run/firecracker.socket.requests.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RecordedRequest);
    const body = (p: string) => requests.find((r) => r.method === 'PUT' && r.path === p)?.body;
    expect(body('/boot-source')).toMatchObject({ kernel_image_path: '/vmlinux' });
    expect(body('/drives/rootfs')).toMatchObject({ path_on_host: '/drive-rootfs' });
    expect(body('/logger')).toMatchObject({ log_path: '/firecracker.log' });
    // The writable disk is the VM user's, the shared kernel stays root's; both are the same files, linked in.
    const disk = await stat(path.join(root, 'drive-rootfs'));
    expect([disk.uid, disk.ino]).toEqual([user.uid, (await stat(spec.drives[0]!.path)).ino]);
    expect((await stat(path.join(root, 'vmlinux'))).uid).toBe(0);

    await driver.kill(handle);
    launched.pop();
  }, 60_000);
});
