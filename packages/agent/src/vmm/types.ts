import type { VmmUser } from './confine.ts';

/**
 * The contract between the agent's VM service and a VMM driver. A driver turns a fully resolved
 * launch spec (local paths, TAP names already created) into a detached VMM process and controls it.
 * Field names follow Firecracker's API where one exists (drive_id, is_read_only, rate limiters).
 */

/** Firecracker's token bucket: `size` tokens, refilled over `refill_time` ms; `one_time_burst` extra once. */
export interface TokenBucket {
  size: number;
  one_time_burst?: number;
  refill_time: number;
}

export interface RateLimiter {
  bandwidth?: TokenBucket;
  ops?: TokenBucket;
}

export interface DriveSpec {
  drive_id: string;
  path: string;
  is_root_device: boolean;
  is_read_only: boolean;
  cache_type: 'Unsafe' | 'Writeback';
  io_engine: 'Sync' | 'Async';
  rate_limiter?: RateLimiter;
}

export interface NicSpec {
  iface_id: string;
  /** Host TAP device, created by the agent's network layer before launch. */
  tap: string;
  mac: string;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

export type CpuTemplate = 'C3' | 'T2' | 'T2S' | 'T2CL' | 'T2A' | 'None';

export interface VmLaunchSpec {
  vm_id: string;
  vcpu: number;
  mem_mib: number;
  smt: boolean;
  cpu_template: CpuTemplate;
  kernel_path: string;
  initrd_path?: string;
  boot_args: string;
  drives: DriveSpec[];
  nics: NicSpec[];
  balloon?: { amount_mib: number; deflate_on_oom: boolean; stats_polling_interval_s: number };
  entropy?: { rate_limiter?: RateLimiter };
  vsock?: { guest_cid: number };
  /** QEMU `-d` log items written to the VMM log (the logger's Info level). */
  log_items?: string[];
  /** Restore from a saved state instead of a cold boot (QEMU: -incoming). */
  incoming_state_path?: string;
}

/** Files of one VM; every path lives in the VM's own directory. */
export interface VmPaths {
  dir: string;
  pidFile: string;
  controlSocket: string;
  consoleSocket: string;
  consoleLog: string;
  vmmLog: string;
}

export type VmmKind = 'qemu' | 'firecracker';

export interface VmmAvailability {
  kind: VmmKind;
  available: boolean;
  version?: string;
  accel?: 'kvm' | 'tcg';
  reason?: string;
}

/** `held`: started with its vCPUs held (`-S`) and never continued — its boot did not finish. */
export type VmmRunState = 'running' | 'paused' | 'held' | 'shutdown' | 'unknown';

export interface VmmHandle {
  vmId: string;
  pid: number;
  paths: VmPaths;
}

export interface LaunchOptions {
  holdUntil?: Promise<unknown>;
  /**
   * Confine the VMM: run it as this unprivileged user (its TAPs must be owned by it), with no capabilities, an empty
   * environment, only the descriptors it is given, in a cgroup of its own holding the VM's CPU and memory limits.
   */
  user?: VmmUser;
}

export interface VmmDriver {
  /** Whether `launch` honours `holdUntil` (otherwise the caller must finish first). */
  readonly canHold: boolean;
  readonly kind: VmmKind;
  availability(): Promise<VmmAvailability>;
  /**
   * Start the VMM detached from the agent (own session) and boot the guest. With `holdUntil` (drivers that can)
   * the VMM starts with its vCPUs stopped and runs them once the promise resolves: the caller finishes work the
   * guest needs (its disk) while the VMM initialises. A rejected `holdUntil` kills the VMM and fails the launch.
   */
  launch(spec: VmLaunchSpec, paths: VmPaths, opts?: LaunchOptions): Promise<VmmHandle>;
  /** Re-attach to a VMM still running from an earlier agent process; null when it is gone. */
  adopt(vmId: string, paths: VmPaths): Promise<VmmHandle | null>;
  state(handle: VmmHandle): Promise<VmmRunState>;
  pause(handle: VmmHandle): Promise<void>;
  resume(handle: VmmHandle): Promise<void>;
  ctrlAltDel(handle: VmmHandle): Promise<void>;
  /** ACPI power-down, then kill after `timeoutMs`. Resolves once the process is gone. */
  stop(handle: VmmHandle, opts: { timeoutMs: number }): Promise<void>;
  kill(handle: VmmHandle): Promise<void>;
  /** Frees what a confined VMM held on the host (its cgroup) once it is gone, however it went. */
  release(vmId: string): Promise<void>;
}
