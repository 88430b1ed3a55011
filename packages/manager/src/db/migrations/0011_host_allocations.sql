-- What is placed on each host, kept current by a trigger on vms, so placing a VM and listing hosts read one row per
-- host instead of summing every VM. The states that hold resources mirror HOLDING in vms.repository.ts (a test checks).
CREATE FUNCTION nqvm_vm_holds(state text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
  SELECT state IN ('creating', 'starting', 'running', 'paused', 'stopping', 'unknown')
$$;

CREATE TABLE host_allocations (
  host_id uuid PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
  vcpu bigint NOT NULL DEFAULT 0,
  mem_mib bigint NOT NULL DEFAULT 0,
  vms bigint NOT NULL DEFAULT 0
);
INSERT INTO host_allocations (host_id, vcpu, mem_mib, vms)
  SELECT host_id, coalesce(sum(vcpu) FILTER (WHERE nqvm_vm_holds(state)), 0),
         coalesce(sum(mem_mib) FILTER (WHERE nqvm_vm_holds(state)), 0), count(*)
  FROM vms WHERE host_id IS NOT NULL GROUP BY host_id;

CREATE FUNCTION nqvm_count_allocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.host_id IS NOT NULL THEN
    UPDATE host_allocations SET
      vcpu = vcpu - CASE WHEN nqvm_vm_holds(OLD.state) THEN OLD.vcpu ELSE 0 END,
      mem_mib = mem_mib - CASE WHEN nqvm_vm_holds(OLD.state) THEN OLD.mem_mib ELSE 0 END,
      vms = vms - 1
    WHERE host_id = OLD.host_id;
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.host_id IS NOT NULL THEN
    INSERT INTO host_allocations AS a (host_id, vcpu, mem_mib, vms)
    VALUES (NEW.host_id, CASE WHEN nqvm_vm_holds(NEW.state) THEN NEW.vcpu ELSE 0 END,
            CASE WHEN nqvm_vm_holds(NEW.state) THEN NEW.mem_mib ELSE 0 END, 1)
    ON CONFLICT (host_id) DO UPDATE SET vcpu = a.vcpu + EXCLUDED.vcpu, mem_mib = a.mem_mib + EXCLUDED.mem_mib,
      vms = a.vms + 1;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER vms_count_allocation AFTER INSERT OR DELETE OR UPDATE OF host_id, state, vcpu, mem_mib ON vms
  FOR EACH ROW EXECUTE FUNCTION nqvm_count_allocation();
