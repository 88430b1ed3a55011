CREATE TABLE networks (
  name text PRIMARY KEY,
  cidr cidr NOT NULL,
  gateway inet NOT NULL,
  bridge text NOT NULL,
  nat boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE vms (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  state text NOT NULL,
  host_id uuid REFERENCES hosts(id) ON DELETE RESTRICT,
  vmm text NOT NULL,
  vcpu integer NOT NULL CHECK (vcpu BETWEEN 1 AND 32),
  mem_mib integer NOT NULL CHECK (mem_mib >= 128),
  smt boolean NOT NULL DEFAULT false,
  cpu_template text NOT NULL DEFAULT 'None',
  kernel_image_id uuid NOT NULL,
  initrd_image_id uuid,
  rootfs_image_id uuid NOT NULL,
  boot_args text NOT NULL DEFAULT '',
  tags text[] NOT NULL DEFAULT '{}',
  owner text NOT NULL DEFAULT '',
  environment text NOT NULL DEFAULT '',
  restart_policy text NOT NULL DEFAULT 'never',
  username text,
  password_enc text,
  ssh_authorized_keys jsonb NOT NULL DEFAULT '[]'::jsonb,
  guest_token_hash text NOT NULL,
  guest_token_enc text NOT NULL,
  template_id uuid,
  source_snapshot_id uuid,
  guest_ip text,
  pid integer,
  last_error text,
  restart_count integer NOT NULL DEFAULT 0,
  desired_running boolean NOT NULL DEFAULT true,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_by text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  booted_at timestamptz,
  guest_ready_at timestamptz
);
CREATE INDEX vms_host_idx ON vms(host_id);
CREATE INDEX vms_state_idx ON vms(state);
CREATE INDEX vms_created_idx ON vms(created_at, id);
CREATE INDEX vms_tags_idx ON vms USING gin(tags);

CREATE TABLE vm_nics (
  vm_id uuid NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  iface_id text NOT NULL,
  network text NOT NULL REFERENCES networks(name),
  mac text NOT NULL UNIQUE,
  ip inet NOT NULL,
  config jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (vm_id, iface_id),
  UNIQUE (network, ip)
);
