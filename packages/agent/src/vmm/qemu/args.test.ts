import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { VmLaunchSpec, VmPaths } from '../types.js';
import { buildQemuArgs, throttleFromRateLimiter } from './args.js';
import { InvalidLaunchSpec } from './errors.js';

const paths: VmPaths = {
  dir: '/var/lib/nqvm/vms/vm1',
  pidFile: '/var/lib/nqvm/vms/vm1/vmm.pid',
  controlSocket: '/var/lib/nqvm/vms/vm1/qmp.sock',
  consoleSocket: '/var/lib/nqvm/vms/vm1/console.sock',
  consoleLog: '/var/lib/nqvm/vms/vm1/console.log',
  vmmLog: '/var/lib/nqvm/vms/vm1/vmm.log',
};

const base = (): VmLaunchSpec => ({
  vm_id: 'vm1',
  vcpu: 2,
  mem_mib: 256,
  smt: false,
  cpu_template: 'None',
  kernel_path: '/images/vmlinuz',
  initrd_path: '/images/initrd.gz',
  boot_args: 'console=ttyS0',
  drives: [
    {
      drive_id: 'data',
      path: '/var/lib/nqvm/vms/vm1/data.ext4',
      is_root_device: false,
      is_read_only: true,
      cache_type: 'Writeback',
      io_engine: 'Async',
    },
    {
      drive_id: 'rootfs',
      path: '/var/lib/nqvm/vms/vm1/rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
      cache_type: 'Unsafe',
      io_engine: 'Sync',
    },
  ],
  nics: [{ iface_id: 'eth0', tap: 'nqt-vm1-0', mac: '02:FC:00:00:00:01' }],
});

const after = (argv: string[], flag: string): string[] =>
  argv.flatMap((a, i) => (a === flag && argv[i + 1] !== undefined ? [argv[i + 1] as string] : []));

describe('buildQemuArgs', () => {
  test('builds a microvm command line with every device', () => {
    const argv = buildQemuArgs(
      {
        ...base(),
        balloon: { amount_mib: 64, deflate_on_oom: true, stats_polling_interval_s: 5 },
        entropy: { rate_limiter: { bandwidth: { size: 1000, refill_time: 100 } } },
        vsock: { guest_cid: 3 },
        incoming_state_path: '/var/lib/nqvm/vms/vm1/state.bin',
      },
      paths,
      { accel: 'tcg', hostTscKhz: 2_096_032 },
    );
    expect(after(argv, '-M')).toEqual(['microvm,acpi=on,memory-backend=ram0']);
    expect(after(argv, '-accel')).toEqual(['tcg']);
    expect(after(argv, '-cpu')).toEqual(['max']);
    expect(after(argv, '-smp')).toEqual(['2,sockets=1,cores=2,threads=1']);
    expect(after(argv, '-m')).toEqual(['256M']);
    // guest RAM in a shared file of the VM directory: snapshots save device state only and copy the file
    expect(after(argv, '-object')).toContain(
      `memory-backend-file,id=ram0,size=256M,mem-path=${paths.dir}/guest.ram,share=on`,
    );
    expect(argv).toEqual(expect.arrayContaining(['-nodefaults', '-no-user-config', '-no-reboot']));
    expect(after(argv, '-append')).toEqual(['console=ttyS0 root=/dev/vda rw tsc_early_khz=2096032 tsc=reliable']);
    // root device first, so the guest sees it as /dev/vda
    expect(after(argv, '-drive')).toEqual([
      'if=none,id=drive-rootfs,file=/var/lib/nqvm/vms/vm1/rootfs.ext4,format=raw,readonly=off,cache=unsafe,aio=threads',
      'if=none,id=drive-data,file=/var/lib/nqvm/vms/vm1/data.ext4,format=raw,readonly=on,cache=writeback,aio=io_uring',
    ]);
    expect(after(argv, '-netdev')).toEqual(['tap,id=net-eth0,ifname=nqt-vm1-0,script=no,downscript=no']);
    expect(after(argv, '-device')).toEqual([
      'virtio-blk-device,drive=drive-rootfs,id=blk-rootfs',
      'virtio-blk-device,drive=drive-data,id=blk-data',
      'virtio-net-device,netdev=net-eth0,mac=02:fc:00:00:00:01,id=nic-eth0',
      'virtio-balloon-device,id=balloon0,deflate-on-oom=on',
      'virtio-rng-device,rng=rng0,max-bytes=1000,period=100',
      'vhost-vsock-device,id=vsock0,guest-cid=3',
    ]);
    expect(after(argv, '-chardev')).toEqual([
      `socket,id=con0,path=${paths.consoleSocket},server=on,wait=off,logfile=${paths.consoleLog},logappend=on`,
    ]);
    expect(after(argv, '-serial')).toEqual(['chardev:con0']);
    expect(after(argv, '-qmp')).toEqual([`unix:${paths.controlSocket},server=on,wait=off`]);
    expect(after(argv, '-D')).toEqual([paths.vmmLog]);
    expect(after(argv, '-pidfile')).toEqual([paths.pidFile]);
    // the stream is fed over QMP once x-ignore-shared is set
    expect(after(argv, '-incoming')).toEqual(['defer']);
  });

  test('maps SMT to two threads per core and CPU templates to QEMU models', () => {
    const kvm = buildQemuArgs({ ...base(), smt: true, vcpu: 4, cpu_template: 'T2CL' }, paths, { accel: 'kvm' });
    expect(after(kvm, '-smp')).toEqual(['4,sockets=1,cores=2,threads=2']);
    expect(after(kvm, '-cpu')).toEqual(['Cascadelake-Server-noTSX']);
    expect(after(kvm, '-append')).toEqual(['console=ttyS0 root=/dev/vda rw']);
    expect(after(buildQemuArgs({ ...base(), cpu_template: 'T2A' }, paths, { accel: 'kvm' }), '-cpu')).toEqual([
      'EPYC-Milan',
    ]);
    expect(after(buildQemuArgs(base(), paths, { accel: 'kvm' }), '-cpu')).toEqual(['host']);
    expect(() => buildQemuArgs({ ...base(), smt: true, vcpu: 3 }, paths, { accel: 'kvm' })).toThrow(InvalidLaunchSpec);
  });

  test('starts with the vCPUs stopped (-S) only when asked to hold', () => {
    expect(buildQemuArgs(base(), paths, { accel: 'tcg', paused: true })).toContain('-S');
    expect(buildQemuArgs(base(), paths, { accel: 'tcg' })).not.toContain('-S');
  });

  test('keeps an explicit root= and adds nothing without a root drive', () => {
    const spec = { ...base(), boot_args: 'console=ttyS0 root=/dev/vdb ro' };
    expect(after(buildQemuArgs(spec, paths, { accel: 'kvm' }), '-append')).toEqual(['console=ttyS0 root=/dev/vdb ro']);
    expect(after(buildQemuArgs({ ...base(), drives: [] }, paths, { accel: 'kvm' }), '-append')).toEqual([
      'console=ttyS0',
    ]);
  });

  test('turns Firecracker token buckets into QEMU throttling with a one-second burst', () => {
    expect(
      throttleFromRateLimiter('rl', {
        bandwidth: { size: 1_048_576, refill_time: 1000 },
        ops: { size: 100, refill_time: 500, one_time_burst: 300 },
      }),
    ).toEqual({ 'bps-total': 1_048_576, 'iops-total': 200, 'iops-total-max': 400, 'iops-total-max-length': 1 });
    expect(throttleFromRateLimiter('rl', { bandwidth: { size: 0, refill_time: 1000 } })).toEqual({});
    const argv = buildQemuArgs(
      {
        ...base(),
        drives: [{ ...base().drives[1]!, rate_limiter: { bandwidth: { size: 2_000_000, refill_time: 500 } } }],
      },
      paths,
      { accel: 'tcg' },
    );
    expect(after(argv, '-drive')[0]).toContain(',throttling.bps-total=4000000');
  });

  test.each([
    ['vm_id', { vm_id: 'a b' }],
    ['drive_id', { drives: [{ ...base().drives[1]!, drive_id: 'Root' }] }],
    ['duplicate drive ids', { drives: [base().drives[1]!, base().drives[1]!] }],
    ['relative path', { kernel_path: 'vmlinuz' }],
    ['path with ..', { kernel_path: '/images/../etc/shadow' }],
    ['path with a comma', { initrd_path: '/images/x,file=/etc/shadow' }],
    ['tap too long', { nics: [{ iface_id: 'eth0', tap: 'tap-name-way-too-long', mac: '02:00:00:00:00:01' }] }],
    ['multicast mac', { nics: [{ iface_id: 'eth0', tap: 'tap0', mac: '01:00:00:00:00:01' }] }],
    ['vcpu 0', { vcpu: 0 }],
    ['mem fraction', { mem_mib: 256.5 }],
    ['newline in boot args', { boot_args: 'console=ttyS0\ninit=/bin/sh' }],
    ['cpu template', { cpu_template: 'Skylake' as never }],
    ['vsock cid 2', { vsock: { guest_cid: 2 } }],
  ])('refuses %s', (_name, patch) => {
    expect(() => buildQemuArgs({ ...base(), ...patch }, paths, { accel: 'tcg' })).toThrow(InvalidLaunchSpec);
  });

  test('refuses socket paths longer than sun_path allows', () => {
    const long = `/${'d'.repeat(120)}/qmp.sock`;
    expect(() => buildQemuArgs(base(), { ...paths, controlSocket: long }, { accel: 'tcg' })).toThrow(/controlSocket/);
  });
});

describe('injection through launch spec values', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'nqvm-inject-'));
  const mark = path.join(work, 'MARK');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const payloads = [`$(touch ${mark})`, `;touch ${mark}`, `\`touch ${mark}\``, `|touch ${mark}`, `&& touch ${mark}`];

  test.each(payloads)('payload %s is refused in every field that reaches argv', (payload) => {
    const attempts: Array<Partial<VmLaunchSpec> | { paths: Partial<VmPaths> }> = [
      { vm_id: payload },
      { kernel_path: `/images/${payload}` },
      { initrd_path: `/images/${payload}` },
      { incoming_state_path: `/tmp/s ${payload}` },
      { drives: [{ ...base().drives[1]!, path: `/d/${payload}` }] },
      { drives: [{ ...base().drives[1]!, drive_id: payload }] },
      { nics: [{ iface_id: 'eth0', tap: payload, mac: '02:00:00:00:00:01' }] },
      { nics: [{ iface_id: payload, tap: 'tap0', mac: '02:00:00:00:00:01' }] },
      { nics: [{ iface_id: 'eth0', tap: 'tap0', mac: payload }] },
      { paths: { controlSocket: `/run/${payload}` } },
      { paths: { consoleLog: `/run/${payload}` } },
    ];
    for (const a of attempts) {
      const p = 'paths' in a ? { ...paths, ...a.paths } : paths;
      const spec = 'paths' in a ? base() : { ...base(), ...a };
      expect(() => buildQemuArgs(spec, p, { accel: 'tcg' })).toThrow(InvalidLaunchSpec);
    }
  });

  test('boot args with shell syntax stay one inert argv element and run nothing', () => {
    const bootArgs = payloads.join(' ');
    const argv = buildQemuArgs({ ...base(), boot_args: bootArgs }, paths, { accel: 'tcg' });
    expect(after(argv, '-append')[0]?.startsWith(bootArgs)).toBe(true);
    // hand the exact argv to a real program without a shell, as the driver does with spawn
    const res = spawnSync('/bin/echo', argv, { encoding: 'utf8' });
    expect(res.status).toBe(0);
    expect(existsSync(mark)).toBe(false);
  });
});
