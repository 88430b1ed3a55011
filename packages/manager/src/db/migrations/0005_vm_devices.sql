-- Extra drives of a VM (the root disk and guest tools drive are implied by the VM itself).
CREATE TABLE vm_drives (
  vm_id uuid NOT NULL REFERENCES vms(id) ON DELETE CASCADE,
  drive_id text NOT NULL,
  size_mib integer,
  image_id uuid,
  is_read_only boolean NOT NULL DEFAULT false,
  cache_type text NOT NULL DEFAULT 'Writeback',
  io_engine text NOT NULL DEFAULT 'Sync',
  rate_limiter jsonb,
  position integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (vm_id, drive_id),
  CHECK ((size_mib IS NULL) <> (image_id IS NULL))
);
