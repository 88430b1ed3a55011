/**
 * Request and response bodies of the Firecracker v1.16.1 API, named as in its swagger definitions
 * (shared/firecracker/firecracker-v1.16.1.yaml). Only what the driver sends or reads is modelled.
 */
import type { CpuTemplate, RateLimiter, TokenBucket } from '../types.js';

export type { CpuTemplate, RateLimiter, TokenBucket };

export interface MachineConfiguration {
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  track_dirty_pages?: boolean;
  cpu_template?: CpuTemplate | 'V1N1';
  huge_pages?: 'None' | '2M';
}

export interface CpuidRegisterModifier {
  register: 'eax' | 'ebx' | 'ecx' | 'edx';
  bitmap: string;
}

export interface CpuConfig {
  kvm_capabilities?: string[];
  cpuid_modifiers?: { leaf: string; subleaf: string; flags: number; modifiers: CpuidRegisterModifier[] }[];
  msr_modifiers?: { addr: string; bitmap: string }[];
}

export interface BootSource {
  kernel_image_path: string;
  initrd_path?: string;
  boot_args?: string;
}

export interface Drive {
  drive_id: string;
  is_root_device: boolean;
  path_on_host?: string;
  is_read_only?: boolean;
  partuuid?: string;
  cache_type?: 'Unsafe' | 'Writeback';
  io_engine?: 'Sync' | 'Async';
  rate_limiter?: RateLimiter;
}

export interface PartialDrive {
  drive_id: string;
  path_on_host?: string;
  rate_limiter?: RateLimiter;
}

export interface NetworkInterface {
  iface_id: string;
  host_dev_name: string;
  guest_mac?: string;
  mtu?: number;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

export interface PartialNetworkInterface {
  iface_id: string;
  rx_rate_limiter?: RateLimiter;
  tx_rate_limiter?: RateLimiter;
}

export interface Logger {
  log_path?: string;
  level?: 'Error' | 'Warning' | 'Info' | 'Debug' | 'Trace' | 'Off';
  show_level?: boolean;
  show_log_origin?: boolean;
  module?: string;
}

export interface Metrics {
  metrics_path: string;
}

export interface Balloon {
  amount_mib: number;
  deflate_on_oom: boolean;
  stats_polling_interval_s?: number;
  free_page_hinting?: boolean;
  free_page_reporting?: boolean;
}

export interface BalloonUpdate {
  amount_mib: number;
}

export interface BalloonStatsUpdate {
  stats_polling_interval_s: number;
}

/** Page counts and MiB are always present; the guest-reported counters (bytes or counts) are optional. */
export interface BalloonStats {
  target_pages: number;
  actual_pages: number;
  target_mib: number;
  actual_mib: number;
  swap_in?: number;
  swap_out?: number;
  major_faults?: number;
  minor_faults?: number;
  free_memory?: number;
  total_memory?: number;
  available_memory?: number;
  disk_caches?: number;
  hugetlb_allocations?: number;
  hugetlb_failures?: number;
  oom_kill?: number;
  alloc_stall?: number;
}

export interface EntropyDevice {
  rate_limiter?: RateLimiter;
}

export interface Vsock {
  guest_cid: number;
  uds_path: string;
}

export interface SerialDevice {
  serial_out_path?: string;
  rate_limiter?: TokenBucket;
}

export type MmdsContents = Record<string, unknown>;

export interface MmdsConfig {
  network_interfaces: string[];
  version?: 'V1' | 'V2';
  ipv4_address?: string;
  imds_compat?: boolean;
}

export type ActionType = 'InstanceStart' | 'SendCtrlAltDel' | 'FlushMetrics';

export interface InstanceActionInfo {
  action_type: ActionType;
}

export interface Vm {
  state: 'Paused' | 'Resumed';
}

export interface SnapshotCreateParams {
  snapshot_path: string;
  mem_file_path: string;
  snapshot_type?: 'Full' | 'Diff';
}

export interface SnapshotLoadParams {
  snapshot_path: string;
  mem_backend?: { backend_type: 'File' | 'Uffd'; backend_path: string };
  track_dirty_pages?: boolean;
  resume_vm?: boolean;
  network_overrides?: { iface_id: string; host_dev_name: string }[];
  vsock_override?: { uds_path: string };
  clock_realtime?: boolean;
}

export type InstanceState = 'Not started' | 'Running' | 'Paused';

export interface InstanceInfo {
  app_name: string;
  id: string;
  state: InstanceState;
  vmm_version: string;
}

export interface FullVmConfiguration {
  'machine-config'?: MachineConfiguration;
  'boot-source'?: BootSource;
  drives?: Drive[];
  'network-interfaces'?: NetworkInterface[];
  balloon?: Balloon;
  vsock?: Vsock;
  entropy?: EntropyDevice;
  logger?: Logger;
  metrics?: Metrics;
  'mmds-config'?: MmdsConfig;
}
