/**
 * The configuration sequence for one launch, as data. Order follows Firecracker's rules: logger and
 * metrics first (the only calls allowed before a snapshot load), then machine, boot source and devices,
 * then InstanceStart; a restore replaces everything after metrics with PUT /snapshot/load.
 */
import path from 'node:path';
import type { RateLimiter, VmLaunchSpec, VmPaths } from '../types.js';
import type { CpuConfig, Logger } from './api-types.js';
import { type FcRequest, fc } from './requests.js';
import {
  assertAbsPath,
  assertId,
  assertMac,
  assertSocketPath,
  assertTap,
  assertUint,
  InvalidFirecrackerValue,
} from './validate.js';

/** Files the driver adds to a VM directory next to the ones named in VmPaths. */
export function firecrackerFiles(paths: VmPaths) {
  return {
    /** Firecracker's own logger output (PUT /logger); stderr goes to paths.vmmLog. */
    apiLog: path.join(paths.dir, 'firecracker.log'),
    metrics: path.join(paths.dir, 'firecracker.metrics'),
    /** Guest serial input: a FIFO held open read-write as Firecracker's stdin. Output goes to paths.consoleLog. */
    consoleIn: path.join(paths.dir, 'console.in'),
    vsock: path.join(paths.dir, 'vsock.sock'),
  };
}

/** Memory file that goes with a snapshot state file: `<state>.mem`. */
export function snapshotMemPath(statePath: string): string {
  return `${statePath}.mem`;
}

export interface LaunchPlanOptions {
  logLevel?: Logger['level'];
  /** Custom CPU template (PUT /cpu-config), applied after machine-config so it wins over a static one. */
  cpuConfig?: CpuConfig;
  /** The logger, metrics and vsock paths as Firecracker sees them (inside its jail), instead of the VM directory's. */
  files?: Pick<ReturnType<typeof firecrackerFiles>, 'apiLog' | 'metrics' | 'vsock'>;
}

function checkLimiter(field: string, rl: RateLimiter | undefined): RateLimiter | undefined {
  if (!rl) return undefined;
  for (const [name, bucket] of Object.entries(rl)) {
    if (!bucket) continue;
    assertUint(`${field}.${name}.size`, bucket.size);
    assertUint(`${field}.${name}.refill_time`, bucket.refill_time);
    if (bucket.one_time_burst !== undefined) assertUint(`${field}.${name}.one_time_burst`, bucket.one_time_burst);
  }
  return rl;
}

function withOptional<T extends object>(base: T, extra: Record<string, unknown>): T {
  const out = { ...base } as Record<string, unknown>;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** Validates the spec and paths, then returns the ordered requests; throws before any side effect. */
export function buildLaunchPlan(spec: VmLaunchSpec, paths: VmPaths, opts: LaunchPlanOptions = {}): FcRequest[] {
  assertId('vm_id', spec.vm_id);
  for (const key of ['dir', 'pidFile', 'consoleLog', 'vmmLog'] as const) assertAbsPath(`paths.${key}`, paths[key]);
  assertSocketPath('paths.controlSocket', paths.controlSocket);
  const files = opts.files ?? firecrackerFiles(paths);

  const plan: FcRequest[] = [
    fc.putLogger({ log_path: files.apiLog, level: opts.logLevel ?? 'Info', show_level: true, show_log_origin: false }),
    fc.putMetrics({ metrics_path: files.metrics }),
  ];

  if (spec.incoming_state_path) {
    const state = assertAbsPath('incoming_state_path', spec.incoming_state_path);
    plan.push(
      fc.snapshotLoad(
        withOptional(
          {
            snapshot_path: state,
            mem_backend: { backend_type: 'File' as const, backend_path: snapshotMemPath(state) },
            resume_vm: true,
          },
          {
            // TAPs are recreated per launch, so point every NIC at today's TAP.
            network_overrides: spec.nics.length
              ? spec.nics.map((n) => ({ iface_id: assertId('iface_id', n.iface_id), host_dev_name: assertTap(n.tap) }))
              : undefined,
            vsock_override: spec.vsock ? { uds_path: assertSocketPath('vsock uds_path', files.vsock) } : undefined,
          },
        ),
      ),
    );
    return plan;
  }

  assertUint('vcpu', spec.vcpu, 1, 32);
  assertUint('mem_mib', spec.mem_mib, 1);
  plan.push(
    fc.putMachineConfig(
      withOptional(
        { vcpu_count: spec.vcpu, mem_size_mib: spec.mem_mib, smt: spec.smt },
        { cpu_template: spec.cpu_template === 'None' ? undefined : spec.cpu_template },
      ),
    ),
  );
  if (opts.cpuConfig) plan.push(fc.putCpuConfig(opts.cpuConfig));
  plan.push(
    fc.putBootSource(
      withOptional(
        { kernel_image_path: assertAbsPath('kernel_path', spec.kernel_path), boot_args: spec.boot_args },
        { initrd_path: spec.initrd_path ? assertAbsPath('initrd_path', spec.initrd_path) : undefined },
      ),
    ),
  );

  const roots = spec.drives.filter((d) => d.is_root_device);
  if (roots.length > 1)
    throw new InvalidFirecrackerValue('drives', roots.map((d) => d.drive_id).join(','), 'more than one root device');
  // Firecracker names block devices in PUT order; the root drive goes first so it is /dev/vda.
  const drives = [...roots, ...spec.drives.filter((d) => !d.is_root_device)];
  for (const d of drives) {
    plan.push(
      fc.putDrive(
        withOptional(
          {
            drive_id: assertId('drive_id', d.drive_id),
            path_on_host: assertAbsPath('drive path', d.path),
            is_root_device: d.is_root_device,
            is_read_only: d.is_read_only,
            cache_type: d.cache_type,
            io_engine: d.io_engine,
          },
          { rate_limiter: checkLimiter('rate_limiter', d.rate_limiter) },
        ),
      ),
    );
  }
  for (const n of spec.nics) {
    plan.push(
      fc.putNetworkInterface(
        withOptional(
          { iface_id: assertId('iface_id', n.iface_id), host_dev_name: assertTap(n.tap), guest_mac: assertMac(n.mac) },
          {
            rx_rate_limiter: checkLimiter('rx_rate_limiter', n.rx_rate_limiter),
            tx_rate_limiter: checkLimiter('tx_rate_limiter', n.tx_rate_limiter),
          },
        ),
      ),
    );
  }
  if (spec.balloon) {
    plan.push(
      fc.putBalloon({
        amount_mib: assertUint('balloon.amount_mib', spec.balloon.amount_mib),
        deflate_on_oom: spec.balloon.deflate_on_oom,
        stats_polling_interval_s: assertUint('balloon.stats_polling_interval_s', spec.balloon.stats_polling_interval_s),
      }),
    );
  }
  if (spec.entropy) {
    plan.push(fc.putEntropy(withOptional({}, { rate_limiter: checkLimiter('entropy', spec.entropy.rate_limiter) })));
  }
  if (spec.vsock) {
    plan.push(
      fc.putVsock({
        guest_cid: assertUint('vsock.guest_cid', spec.vsock.guest_cid, 3, 0xffff_ffff),
        uds_path: assertSocketPath('vsock uds_path', files.vsock),
      }),
    );
  }
  plan.push(fc.action('InstanceStart'));
  return plan;
}
