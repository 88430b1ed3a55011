export { type BundleResult, bundleGuestAgent, DEFAULT_BUNDLE_PATH } from './bundle';
export { ConfigError, parseConfig, type ResolvedConfig } from './config';
export {
  type CpuTimes,
  countProcesses,
  cpuPercent,
  diskUsage,
  type MemoryUsage,
  MetricsSampler,
  nodeProcSource,
  type ProcSource,
  parseLoadavg,
  parseMeminfo,
  parseNetDev,
  parseProcStat,
  parseUptime,
} from './metrics';
export type {
  DiskUsage,
  GuestAgentConfig,
  GuestHealth,
  GuestMetrics,
  GuestReport,
  InterfaceCounters,
  LoadAverage,
  NetworkTotals,
} from './types';
export { DEFAULT_CONFIG_PATH, GUEST_AGENT_PORT, GUEST_AGENT_VERSION, guestReportPath } from './version';
