-- A project's quota (NULL: unlimited) and its rate-limit overrides (NULL: the configured default). No row: no limits.
CREATE TABLE project_quotas (
  project_id uuid PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
  vcpus integer CHECK (vcpus >= 0),
  memory_mib bigint CHECK (memory_mib >= 0),
  vms integer CHECK (vms >= 0),
  running_vms integer CHECK (running_vms >= 0),
  disk_gib integer CHECK (disk_gib >= 0),
  snapshots integer CHECK (snapshots >= 0),
  functions integer CHECK (functions >= 0),
  rate_limit_per_token integer CHECK (rate_limit_per_token >= 0),
  rate_limit_per_user integer CHECK (rate_limit_per_user >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The metered facts of every VM and snapshot as they change, written by triggers in the transaction of the change, so
-- usage is computed from durable rows alone: each row holds from `at` until the next row of the same resource.
-- `active`: a VM whose VMM holds its vCPUs and memory (running, paused, stopping, unknown); a snapshot that exists.
CREATE TABLE usage_log (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  project_id uuid NOT NULL,
  resource_type text NOT NULL CHECK (resource_type IN ('vm', 'snapshot')),
  resource_id uuid NOT NULL,
  name text NOT NULL,
  active boolean NOT NULL,
  vcpu integer NOT NULL DEFAULT 0,
  mem_mib integer NOT NULL DEFAULT 0,
  disk_bytes bigint NOT NULL DEFAULT 0,
  gone boolean NOT NULL DEFAULT false
);
CREATE INDEX usage_log_project_idx ON usage_log (project_id, at);
CREATE INDEX usage_log_resource_idx ON usage_log (resource_id, at);

CREATE FUNCTION nqvm_vm_metered(state text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT state IN ('running', 'paused', 'stopping', 'unknown')
$$;

CREATE FUNCTION nqvm_log_vm_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO usage_log (project_id, resource_type, resource_id, name, active, gone)
    VALUES (OLD.project_id, 'vm', OLD.id, OLD.name, false, true);
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND nqvm_vm_metered(OLD.state) = nqvm_vm_metered(NEW.state) AND OLD.vcpu = NEW.vcpu
     AND OLD.mem_mib = NEW.mem_mib AND OLD.project_id = NEW.project_id THEN
    RETURN NULL;
  END IF;
  INSERT INTO usage_log (project_id, resource_type, resource_id, name, active, vcpu, mem_mib, disk_bytes)
  VALUES (NEW.project_id, 'vm', NEW.id, NEW.name, nqvm_vm_metered(NEW.state), NEW.vcpu, NEW.mem_mib,
          coalesce((SELECT size_bytes FROM images WHERE id = NEW.rootfs_image_id), 0));
  RETURN NULL;
END
$$;
CREATE TRIGGER vms_log_usage AFTER INSERT OR DELETE OR UPDATE OF state, vcpu, mem_mib, project_id ON vms
  FOR EACH ROW EXECUTE FUNCTION nqvm_log_vm_usage();

CREATE FUNCTION nqvm_log_snapshot_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO usage_log (project_id, resource_type, resource_id, name, active, gone)
    VALUES (OLD.project_id, 'snapshot', OLD.id, OLD.name, false, true);
    RETURN NULL;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.state_bytes = NEW.state_bytes AND OLD.disk_bytes = NEW.disk_bytes
     AND OLD.project_id = NEW.project_id THEN
    RETURN NULL;
  END IF;
  INSERT INTO usage_log (project_id, resource_type, resource_id, name, active, disk_bytes)
  VALUES (NEW.project_id, 'snapshot', NEW.id, NEW.name, true, NEW.state_bytes + NEW.disk_bytes);
  RETURN NULL;
END
$$;
CREATE TRIGGER snapshots_log_usage AFTER INSERT OR DELETE OR UPDATE OF state_bytes, disk_bytes, project_id
  ON snapshots FOR EACH ROW EXECUTE FUNCTION nqvm_log_snapshot_usage();

-- Metering starts with this migration: what exists now is logged as of now.
INSERT INTO usage_log (project_id, resource_type, resource_id, name, active, vcpu, mem_mib, disk_bytes)
  SELECT v.project_id, 'vm', v.id, v.name, nqvm_vm_metered(v.state), v.vcpu, v.mem_mib, coalesce(i.size_bytes, 0)
  FROM vms v LEFT JOIN images i ON i.id = v.rootfs_image_id;
INSERT INTO usage_log (project_id, resource_type, resource_id, name, active, disk_bytes)
  SELECT project_id, 'snapshot', id, name, true, state_bytes + disk_bytes FROM snapshots;

ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_kind_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_kind_check
  CHECK (kind IN ('vm_crashed', 'host_unreachable', 'metric_above', 'quota_above'));
ALTER TABLE alert_rules ADD COLUMN project_id uuid REFERENCES projects(id) ON DELETE CASCADE;
ALTER TABLE alerts DROP CONSTRAINT alerts_subject_type_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_subject_type_check CHECK (subject_type IN ('vm', 'host', 'project'));
