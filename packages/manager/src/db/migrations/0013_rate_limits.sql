-- API rate limit counters, one row per key (token, user or source address) and fixed window, shared by every manager.
-- Unlogged: a lost counter after a database crash only forgives one window; nothing else depends on it.
CREATE UNLOGGED TABLE rate_limit_counters (
  key text NOT NULL,
  window_start timestamptz NOT NULL,
  hits integer NOT NULL,
  PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start);
