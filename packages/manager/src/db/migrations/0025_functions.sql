-- Functions (code run in microVMs), their immutable versions (what runs: code, resources, environment, each with its
-- warm snapshot), invocations (durable: a lease says which manager runs one; an expired lease ends it failed) and the
-- pool of pre-restored instances per version.
CREATE TABLE functions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001' REFERENCES projects (id) ON DELETE RESTRICT,
  name text NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  runtime text NOT NULL CHECK (runtime IN ('node20', 'python3')),
  concurrency integer NOT NULL,
  queue_limit integer NOT NULL,
  http_enabled boolean NOT NULL,
  http_token_hash text,
  version integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE function_versions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  function_id uuid NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
  version integer NOT NULL,
  runtime text NOT NULL,
  handler text NOT NULL,
  files jsonb NOT NULL,
  vcpu integer NOT NULL,
  mem_mib integer NOT NULL,
  timeout_ms integer NOT NULL,
  network boolean NOT NULL,
  env jsonb NOT NULL,
  -- name → sealed value (SecretBox): never returned, opened only to load the code into an instance.
  secrets_enc jsonb NOT NULL,
  snapshot_state text NOT NULL DEFAULT 'none' CHECK (snapshot_state IN ('none', 'building', 'ready', 'failed')),
  snapshot_id uuid,
  -- The VM booted to take the snapshot (deleted once it is taken).
  builder_vm_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (function_id, version)
);

CREATE TABLE function_invocations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigserial NOT NULL UNIQUE,
  function_id uuid NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
  version_id uuid NOT NULL,
  version integer NOT NULL,
  state text NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'timed_out')),
  trigger text NOT NULL CHECK (trigger IN ('api', 'http')),
  start text CHECK (start IN ('cold', 'warm', 'pool')),
  event jsonb,
  value jsonb,
  error jsonb,
  stdout text NOT NULL DEFAULT '',
  stderr text NOT NULL DEFAULT '',
  stdout_truncated boolean NOT NULL DEFAULT false,
  stderr_truncated boolean NOT NULL DEFAULT false,
  duration_ms integer,
  total_ms integer,
  vm_id uuid,
  lease_owner text,
  lease_expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz
);
CREATE INDEX function_invocations_function_idx ON function_invocations (function_id, seq);
CREATE INDEX function_invocations_live_idx ON function_invocations (state) WHERE state IN ('queued', 'running');

-- Paused instances restored from a version's snapshot, each taken by one invocation.
CREATE TABLE function_instances (
  vm_id uuid PRIMARY KEY,
  version_id uuid NOT NULL,
  function_id uuid NOT NULL,
  state text NOT NULL CHECK (state IN ('starting', 'ready', 'taken')),
  owner text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX function_instances_version_idx ON function_instances (version_id, state);
