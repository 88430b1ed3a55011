/** JSON served by `GET /metrics`. The flat fields keep the original guest agent's names so old consumers work. */
export interface GuestMetrics {
  /** Busy share of all CPU time over the last background sample (~1 s), 0–100; 0 until two samples exist. */
  cpu_usage_percent: number;
  cpu_count: number;
  memory_usage_percent: number;
  memory_used_kb: number;
  memory_total_kb: number;
  memory_available_kb: number;
  uptime_seconds: number;
  load_average: LoadAverage;
  process_count: number;
  disk: DiskUsage;
  network: NetworkTotals;
  /** ISO 8601 time this snapshot was taken. */
  sampled_at: string;
}

export interface LoadAverage {
  one: number;
  five: number;
  fifteen: number;
}

/** Root filesystem usage from statfs('/'); `available` is what an unprivileged user may still write. */
export interface DiskUsage {
  total_bytes: number;
  used_bytes: number;
  available_bytes: number;
  usage_percent: number;
}

export interface InterfaceCounters {
  name: string;
  rx_bytes: number;
  tx_bytes: number;
  rx_packets: number;
  tx_packets: number;
}

/** Counters since boot per interface (loopback excluded) and their sums. */
export interface NetworkTotals {
  interfaces: InterfaceCounters[];
  rx_bytes: number;
  tx_bytes: number;
}

/** JSON served by `GET /health`; `uptime_s` is the guest agent's own uptime, not the VM's. */
export interface GuestHealth {
  status: 'ok';
  version: string;
  uptime_s: number;
}

/** Body the guest agent POSTs to `{host_url}/guest/v1/vms/{vm_id}/report` with `Authorization: Bearer <token>`. */
export interface GuestReport {
  ip: string;
  hostname: string;
  ready: true;
  agent_version: string;
  boot_id: string;
}

/** File the host agent injects at /etc/nqvm/guest-agent.json. */
export interface GuestAgentConfig {
  vm_id: string;
  token: string;
  /** Base URL of the host agent's guest endpoint, e.g. `http://10.0.0.1:19090`. */
  host_url: string;
  /** Port for /health and /metrics; defaults to GUEST_AGENT_PORT. */
  port?: number;
}
