-- Alert rules, and what each fires for. At most one firing alert per rule and subject (the partial unique index),
-- so managers evaluating side by side fire and resolve each alert once, each with its event in the same transaction.
CREATE TABLE alert_rules (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigserial NOT NULL UNIQUE,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  kind text NOT NULL CHECK (kind IN ('vm_crashed', 'host_unreachable', 'metric_above')),
  vm_id uuid,
  host_id uuid,
  metric text CHECK (metric IN ('host_cpu_percent', 'guest_cpu_percent', 'memory_percent')),
  threshold double precision,
  duration_s integer,
  enabled boolean NOT NULL DEFAULT true,
  -- The newest event the rule has looked at (VMM exits between two evaluations are caught from the events).
  event_cursor bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alerts (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  rule_id uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
  subject_type text NOT NULL CHECK (subject_type IN ('vm', 'host')),
  subject_id uuid NOT NULL,
  subject_name text NOT NULL,
  state text NOT NULL CHECK (state IN ('firing', 'resolved')),
  reason text NOT NULL,
  fired_at timestamptz NOT NULL DEFAULT now(),
  resolved_at timestamptz
);
CREATE UNIQUE INDEX alerts_one_firing_idx ON alerts (rule_id, subject_id) WHERE state = 'firing';
CREATE INDEX alerts_rule_idx ON alerts (rule_id, fired_at);
