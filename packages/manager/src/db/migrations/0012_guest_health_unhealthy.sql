-- A guest agent that answers /metrics with an oversized, endless or malformed reply is 'unhealthy'.
ALTER TABLE vm_metrics DROP CONSTRAINT IF EXISTS vm_metrics_guest_health_check;
ALTER TABLE vm_metrics
  ADD CONSTRAINT vm_metrics_guest_health_check
  CHECK (guest_health IN ('healthy', 'unhealthy', 'unreachable', 'not_installed'));
