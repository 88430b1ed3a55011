CREATE TABLE snapshots (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- Snapshots outlive their source VM: its row may go, the snapshot keeps the spec it was taken from.
  vm_id uuid REFERENCES vms(id) ON DELETE SET NULL,
  host_id uuid REFERENCES hosts(id) ON DELETE RESTRICT,
  name text NOT NULL,
  snapshot_type text NOT NULL CHECK (snapshot_type IN ('Full', 'Diff')),
  parent_id uuid REFERENCES snapshots(id) ON DELETE RESTRICT,
  state text NOT NULL CHECK (state IN ('creating', 'ready', 'error')),
  state_bytes bigint NOT NULL DEFAULT 0,
  disk_bytes bigint NOT NULL DEFAULT 0,
  source_spec jsonb NOT NULL,
  password_enc text,
  error text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX snapshots_vm_idx ON snapshots(vm_id, created_at);

CREATE TABLE vm_mmds (
  vm_id uuid PRIMARY KEY REFERENCES vms(id) ON DELETE CASCADE,
  version text NOT NULL DEFAULT 'V1' CHECK (version IN ('V1', 'V2')),
  ipv4_address text NOT NULL DEFAULT '169.254.169.254',
  network_interfaces jsonb NOT NULL DEFAULT '["eth0"]'::jsonb,
  data jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at timestamptz NOT NULL DEFAULT now()
);
