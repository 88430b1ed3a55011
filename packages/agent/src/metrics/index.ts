export { guestValues } from './guest.ts';
export { type MetricsRoutesDeps, metricsRoutes } from './metrics.routes.ts';
export { MetricsHub, type MetricsListener } from './metrics-hub.ts';
export { CLK_TCK, cpuPercent, type ProcCpu, parseProcStat, parseRssBytes } from './proc-stat.ts';
export {
  type ObservedVm,
  type SamplerIo,
  type SamplerOptions,
  sumBlockStats,
  systemSamplerIo,
  VmMetricsSampler,
} from './sampler.ts';
export { BadInterfaceName, procTapCounters } from './tap-counters.ts';
