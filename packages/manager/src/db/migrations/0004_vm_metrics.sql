-- Metrics history: 'raw' samples every ~10 s, rolled up into '5m' points once older than 24 h.
CREATE TABLE vm_metrics (
  vm_id uuid NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  at timestamptz NOT NULL,
  resolution text NOT NULL CHECK (resolution IN ('raw', '5m')),
  samples integer NOT NULL DEFAULT 1 CHECK (samples >= 1),
  host_cpu_pct double precision,
  guest_cpu_pct double precision,
  rss_bytes bigint,
  mem_used_bytes bigint,
  mem_total_bytes bigint,
  disk_read_bytes bigint,
  disk_write_bytes bigint,
  net_rx_bytes bigint,
  net_tx_bytes bigint,
  guest_health text CHECK (guest_health IN ('healthy', 'unreachable', 'not_installed')),
  PRIMARY KEY (vm_id, resolution, at)
);
CREATE INDEX vm_metrics_resolution_at_idx ON vm_metrics(resolution, at);
