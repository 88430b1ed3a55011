import { describe, expect, it } from 'vitest';
import { buildLaunchPlan, type FcRequest, fc } from '../../src/vmm/firecracker/index.js';
import type { RateLimiter, VmLaunchSpec, VmPaths } from '../../src/vmm/types.js';
import { FirecrackerSpec } from '../support/firecracker-spec.js';

const spec = new FirecrackerSpec();
const limiter: RateLimiter = {
  bandwidth: { size: 10 * 1024 * 1024, one_time_burst: 64 * 1024 * 1024, refill_time: 1000 },
  ops: { size: 2000, refill_time: 1000 },
};

// Keyed by every builder, so adding a request without a spec-checked example fails to compile.
const examples: Record<keyof typeof fc, FcRequest<unknown>[]> = {
  describeInstance: [fc.describeInstance()],
  getVmConfig: [fc.getVmConfig()],
  getMachineConfig: [fc.getMachineConfig()],
  putMachineConfig: [
    fc.putMachineConfig({
      vcpu_count: 2,
      mem_size_mib: 512,
      smt: true,
      track_dirty_pages: true,
      cpu_template: 'T2CL',
      huge_pages: '2M',
    }),
  ],
  patchMachineConfig: [fc.patchMachineConfig({ vcpu_count: 4, mem_size_mib: 1024 })],
  putCpuConfig: [
    fc.putCpuConfig({
      kvm_capabilities: ['!56'],
      cpuid_modifiers: [
        { leaf: '0x1', subleaf: '0x0', flags: 0, modifiers: [{ register: 'ecx', bitmap: `0b${'x'.repeat(31)}0` }] },
      ],
      msr_modifiers: [{ addr: '0x10a', bitmap: `0b${'0'.repeat(64)}` }],
    }),
  ],
  putBootSource: [
    fc.putBootSource({
      kernel_image_path: '/vms/a/vmlinux',
      initrd_path: '/vms/a/initrd',
      boot_args: 'console=ttyS0 reboot=k panic=1',
    }),
  ],
  putDrive: [
    fc.putDrive({
      drive_id: 'rootfs',
      path_on_host: '/vms/a/rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
      cache_type: 'Writeback',
      io_engine: 'Async',
      rate_limiter: limiter,
    }),
    fc.putDrive({ drive_id: 'data_1', path_on_host: '/vms/a/data.ext4', is_root_device: false, is_read_only: true }),
  ],
  patchDrive: [
    fc.patchDrive({ drive_id: 'rootfs', rate_limiter: { bandwidth: { size: 0, refill_time: 0 } } }),
    fc.patchDrive({ drive_id: 'data_1', path_on_host: '/vms/a/data2.ext4' }),
  ],
  putNetworkInterface: [
    fc.putNetworkInterface({
      iface_id: 'eth0',
      host_dev_name: 'nqtap0',
      guest_mac: '06:00:ac:10:00:02',
      mtu: 1500,
      rx_rate_limiter: limiter,
      tx_rate_limiter: { bandwidth: { size: 1048576, refill_time: 1000 } },
    }),
  ],
  patchNetworkInterface: [
    fc.patchNetworkInterface({ iface_id: 'eth0', rx_rate_limiter: { ops: { size: 100, refill_time: 100 } } }),
  ],
  putLogger: [
    fc.putLogger({
      log_path: '/vms/a/fc.log',
      level: 'Debug',
      show_level: true,
      show_log_origin: true,
      module: 'api_server',
    }),
  ],
  putMetrics: [fc.putMetrics({ metrics_path: '/vms/a/fc.metrics' })],
  putBalloon: [
    fc.putBalloon({
      amount_mib: 64,
      deflate_on_oom: true,
      stats_polling_interval_s: 5,
      free_page_hinting: false,
      free_page_reporting: true,
    }),
  ],
  patchBalloon: [fc.patchBalloon({ amount_mib: 128 })],
  patchBalloonStats: [fc.patchBalloonStats({ stats_polling_interval_s: 10 })],
  getBalloonStats: [fc.getBalloonStats()],
  putEntropy: [fc.putEntropy({}), fc.putEntropy({ rate_limiter: { bandwidth: { size: 4096, refill_time: 1000 } } })],
  putVsock: [fc.putVsock({ guest_cid: 3, uds_path: '/vms/a/vsock.sock' })],
  putSerial: [
    fc.putSerial({ serial_out_path: '/vms/a/console.log', rate_limiter: { size: 65536, refill_time: 1000 } }),
  ],
  putMmds: [fc.putMmds({ latest: { 'meta-data': { 'instance-id': 'vm-1', tags: ['a'] } } })],
  patchMmds: [fc.patchMmds({ latest: { 'meta-data': { hostname: 'web-1' } } })],
  getMmds: [fc.getMmds()],
  putMmdsConfig: [
    fc.putMmdsConfig({ version: 'V2', network_interfaces: ['eth0'], ipv4_address: '169.254.170.2', imds_compat: true }),
    fc.putMmdsConfig({ network_interfaces: ['eth0'] }),
  ],
  action: [fc.action('InstanceStart'), fc.action('SendCtrlAltDel'), fc.action('FlushMetrics')],
  patchVm: [fc.patchVm('Paused'), fc.patchVm('Resumed')],
  snapshotCreate: [
    fc.snapshotCreate({ snapshot_path: '/vms/a/snap.state', mem_file_path: '/vms/a/snap.mem', snapshot_type: 'Full' }),
    fc.snapshotCreate({ snapshot_path: '/vms/a/d.state', mem_file_path: '/vms/a/d.mem', snapshot_type: 'Diff' }),
  ],
  snapshotLoad: [
    fc.snapshotLoad({
      snapshot_path: '/vms/a/snap.state',
      mem_backend: { backend_type: 'File', backend_path: '/vms/a/snap.mem' },
      track_dirty_pages: true,
      resume_vm: true,
      network_overrides: [{ iface_id: 'eth0', host_dev_name: 'nqtap9' }],
      vsock_override: { uds_path: '/vms/b/vsock.sock' },
      clock_realtime: true,
    }),
    fc.snapshotLoad({ snapshot_path: '/s', mem_backend: { backend_type: 'Uffd', backend_path: '/run/uffd.sock' } }),
  ],
};

const paths: VmPaths = {
  dir: '/var/lib/nqvm/vms/vm-1',
  pidFile: '/var/lib/nqvm/vms/vm-1/vmm.pid',
  controlSocket: '/var/lib/nqvm/vms/vm-1/api.sock',
  consoleSocket: '/var/lib/nqvm/vms/vm-1/console.sock',
  consoleLog: '/var/lib/nqvm/vms/vm-1/console.log',
  vmmLog: '/var/lib/nqvm/vms/vm-1/vmm.log',
};

const fullSpec: VmLaunchSpec = {
  vm_id: 'vm-1',
  vcpu: 2,
  mem_mib: 256,
  smt: false,
  cpu_template: 'T2',
  kernel_path: '/images/vmlinux',
  initrd_path: '/images/initrd.img',
  boot_args: 'console=ttyS0 reboot=k panic=1',
  drives: [
    {
      drive_id: 'data',
      path: '/var/lib/nqvm/vms/vm-1/data.ext4',
      is_root_device: false,
      is_read_only: false,
      cache_type: 'Unsafe',
      io_engine: 'Sync',
    },
    {
      drive_id: 'rootfs',
      path: '/var/lib/nqvm/vms/vm-1/rootfs.ext4',
      is_root_device: true,
      is_read_only: false,
      cache_type: 'Writeback',
      io_engine: 'Sync',
      rate_limiter: limiter,
    },
  ],
  nics: [
    {
      iface_id: 'eth0',
      tap: 'nqt-vm1-0',
      mac: '06:00:0a:00:00:02',
      rx_rate_limiter: limiter,
      tx_rate_limiter: limiter,
    },
  ],
  balloon: { amount_mib: 0, deflate_on_oom: true, stats_polling_interval_s: 1 },
  entropy: { rate_limiter: { bandwidth: { size: 1024, refill_time: 100 } } },
  vsock: { guest_cid: 3 },
};

function expectValid(r: FcRequest<unknown>) {
  const res = spec.validateRequest(r.method, r.path, r.body);
  expect(res.errors, `${r.method} ${r.path}`).toEqual([]);
  expect(res.valid).toBe(true);
}

describe('Firecracker requests against the official v1.16.1 swagger', () => {
  it('loads the spec and its operations', () => {
    expect(spec.version).toBe('1.16.1');
    expect(spec.operations().length).toBeGreaterThan(30);
  });

  for (const [name, requests] of Object.entries(examples)) {
    it(`${name}: every example request validates`, () => {
      for (const r of requests) expectValid(r);
    });
  }

  it('the cold-boot launch plan validates request by request, root drive first, InstanceStart last', () => {
    const plan = buildLaunchPlan(fullSpec, paths);
    for (const r of plan) expectValid(r);
    expect(plan.map((r) => `${r.method} ${r.path}`)).toEqual([
      'PUT /logger',
      'PUT /metrics',
      'PUT /machine-config',
      'PUT /boot-source',
      'PUT /drives/rootfs',
      'PUT /drives/data',
      'PUT /network-interfaces/eth0',
      'PUT /balloon',
      'PUT /entropy',
      'PUT /vsock',
      'PUT /actions',
    ]);
  });

  it('a restore plan is logger, metrics and snapshot/load only, with TAP overrides', () => {
    const plan = buildLaunchPlan({ ...fullSpec, incoming_state_path: '/snaps/s1/vm.state' }, paths, {
      cpuConfig: { kvm_capabilities: ['!56'] },
    });
    for (const r of plan) expectValid(r);
    expect(plan.map((r) => r.path)).toEqual(['/logger', '/metrics', '/snapshot/load']);
    expect(plan[2]?.body).toMatchObject({
      mem_backend: { backend_type: 'File', backend_path: '/snaps/s1/vm.state.mem' },
      network_overrides: [{ iface_id: 'eth0', host_dev_name: 'nqt-vm1-0' }],
    });
  });

  it('a custom CPU template goes right after machine-config', () => {
    const plan = buildLaunchPlan(fullSpec, paths, { cpuConfig: { kvm_capabilities: ['!56'] } });
    expect(plan.map((r) => r.path).slice(2, 4)).toEqual(['/machine-config', '/cpu-config']);
  });
});

describe('the oracle rejects what Firecracker would', () => {
  const bad: [string, string, string, unknown, RegExp][] = [
    ['missing required field', 'PUT', '/drives/rootfs', { drive_id: 'rootfs', path_on_host: '/x' }, /is_root_device/],
    ['wrong type', 'PUT', '/machine-config', { vcpu_count: '2', mem_size_mib: 256 }, /vcpu_count must be integer/],
    ['vCPU count above 32', 'PUT', '/machine-config', { vcpu_count: 33, mem_size_mib: 256 }, /<= 32/],
    [
      'bucket without refill_time',
      'PATCH',
      '/drives/rootfs',
      { drive_id: 'rootfs', rate_limiter: { ops: { size: 1 } } },
      /refill_time/,
    ],
    [
      'negative bucket size',
      'PUT',
      '/network-interfaces/eth0',
      { iface_id: 'eth0', host_dev_name: 't', rx_rate_limiter: { bandwidth: { size: -1, refill_time: 1 } } },
      />= 0/,
    ],
    ['unknown enum value', 'PATCH', '/vm', { state: 'Stopped' }, /allowed values/],
    ['unknown action', 'PUT', '/actions', { action_type: 'Reboot' }, /allowed values/],
    [
      'MMDS address outside 169.254/16',
      'PUT',
      '/mmds/config',
      { network_interfaces: ['eth0'], ipv4_address: '10.0.0.1' },
      /pattern/,
    ],
    [
      'misspelt field (the 1.13 swagger typo)',
      'PUT',
      '/mmds/config',
      { network_interfaces: ['eth0'], imds_comat: true },
      /imds_comat/,
    ],
    ['vsock CID below 3', 'PUT', '/vsock', { guest_cid: 2, uds_path: '/v' }, />= 3/],
    ['balloon update without amount', 'PATCH', '/balloon', {}, /amount_mib/],
    ['snapshot without memory path', 'PUT', '/snapshot/create', { snapshot_path: '/s' }, /mem_file_path/],
    ['missing required body', 'PUT', '/boot-source', undefined, /body is required/],
    ['body on a GET', 'GET', '/', { x: 1 }, /no body/],
    ['unknown path', 'PUT', '/reboot', {}, /no path/],
    ['unknown method', 'DELETE', '/drives/rootfs', undefined, /DELETE is not defined/],
    ['empty path parameter', 'PUT', '/drives/', { drive_id: '', is_root_device: false }, /no path/],
  ];
  for (const [name, method, path, body, message] of bad) {
    it(name, () => {
      const res = spec.validateRequest(method, path, body);
      expect(res.valid).toBe(false);
      expect(res.errors.join('\n')).toMatch(message);
    });
  }
});
