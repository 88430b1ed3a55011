-- Lists answer a page in work proportional to the page: every filter and sort of a list has an index that ends in
-- its keyset columns, so a page is an index range scan.
DROP INDEX vms_state_idx;
DROP INDEX vms_host_idx;
CREATE INDEX vms_state_created_idx ON vms(state, created_at, id);
CREATE INDEX vms_state_id_idx ON vms(state, id);
CREATE INDEX vms_host_created_idx ON vms(host_id, created_at, id);
CREATE INDEX vms_owner_created_idx ON vms(owner, created_at, id);
CREATE INDEX vms_environment_created_idx ON vms(environment, created_at, id);

CREATE INDEX events_actor_idx ON events(actor, id);
CREATE INDEX events_action_idx ON events(action, id);
CREATE INDEX events_result_idx ON events(result, id);

DROP INDEX snapshots_vm_idx;
CREATE INDEX snapshots_vm_created_idx ON snapshots(vm_id, created_at, id);
DROP INDEX api_tokens_user_idx;
CREATE INDEX api_tokens_user_created_idx ON api_tokens(user_id, created_at, id);

-- Substring search (name, description, guest address, image name) through trigram indexes. pg_trgm ships with
-- PostgreSQL's contrib and with PGlite (loaded by newPglite); where a server lacks it, search still works unindexed.
DO $$
BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
  RAISE NOTICE 'pg_trgm is not available: list search runs without an index';
END
$$;
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    CREATE INDEX vms_name_trgm_idx ON vms USING gin (name gin_trgm_ops);
    CREATE INDEX vms_description_trgm_idx ON vms USING gin (description gin_trgm_ops);
    CREATE INDEX vms_guest_ip_trgm_idx ON vms USING gin ((coalesce(guest_ip, '')) gin_trgm_ops);
    CREATE INDEX images_name_trgm_idx ON images USING gin (name gin_trgm_ops);
  END IF;
END
$$;

-- The images list no longer keeps a memory cache, so nothing listens for its changes.
DROP TRIGGER images_changed ON images;
DROP FUNCTION nqvm_notify_images_changed();

-- NIC addresses come from a pool: a free row is claimed with FOR UPDATE SKIP LOCKED (O(1), concurrent claims never
-- wait on each other nor retry), and the pool grows by a block of addresses when it runs dry. pool_next is the next
-- host offset of the network not yet in the pool.
ALTER TABLE networks ADD COLUMN pool_next bigint NOT NULL DEFAULT 2;
CREATE TABLE network_addresses (
  network text NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
  ip inet NOT NULL,
  vm_id uuid,
  PRIMARY KEY (network, ip)
);
CREATE INDEX network_addresses_free_idx ON network_addresses(network, ip) WHERE vm_id IS NULL;
-- Addresses in use before the pool existed stay taken when the pool grows over them.
INSERT INTO network_addresses (network, ip, vm_id) SELECT network, ip, vm_id FROM vm_nics ON CONFLICT DO NOTHING;

-- A NIC that goes (with its VM or alone) gives its address back, whoever deletes it.
CREATE FUNCTION nqvm_release_address() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE network_addresses SET vm_id = NULL WHERE network = OLD.network AND ip = OLD.ip;
  RETURN NULL;
END
$$;
CREATE TRIGGER vm_nics_release_address AFTER DELETE ON vm_nics
  FOR EACH ROW EXECUTE FUNCTION nqvm_release_address();
