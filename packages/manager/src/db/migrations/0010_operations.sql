-- Long actions on VMs are durable rows: claimed by lease (any manager), resumed from their last step after a crash,
-- retried with backoff, ended with a reason. vm_id has no foreign key: an operation outlives the VM it deleted.
CREATE TABLE operations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigserial NOT NULL UNIQUE,
  kind text NOT NULL,
  vm_id uuid,
  step text NOT NULL DEFAULT 'begin',
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  input jsonb NOT NULL DEFAULT '{}'::jsonb,
  actor text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  run_after timestamptz NOT NULL DEFAULT now(),
  lease_owner text,
  lease_expires_at timestamptz,
  error text,
  reason text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  CHECK ((state IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL AND reason IS NOT NULL))
);
CREATE INDEX operations_active_idx ON operations (seq) WHERE state IN ('queued', 'running');
CREATE INDEX operations_vm_idx ON operations (vm_id, seq);
CREATE INDEX operations_state_idx ON operations (state, seq);

-- One function changes a VM's state (VmStateMachine.change): it marks its transaction, and any other write of
-- vms.state is refused here.
CREATE FUNCTION nqvm_guard_vm_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state IS DISTINCT FROM OLD.state
     AND coalesce(current_setting('nqvm.vm_state_change', true), '') <> 'on' THEN
    RAISE EXCEPTION 'vms.state changes only through the VM state machine (% -> %)', OLD.state, NEW.state
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER vms_state_guard BEFORE UPDATE OF state ON vms
  FOR EACH ROW EXECUTE FUNCTION nqvm_guard_vm_state();
