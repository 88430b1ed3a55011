-- Every manager follows one notification channel, nqvm_changes, to see what any manager (or an operator's SQL) did:
-- list caches drop what a change touches, the live event stream picks up new events, VM waits wake. One
-- notification per statement, never per row: payload '<table>', 'vms:<id>,<id>…' (or 'vms:*' when many), and
-- 'events:<first id>-<last id>'. Attach nqvm_notify_change to a new listed table in its own migration.
CREATE FUNCTION nqvm_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('nqvm_changes', TG_TABLE_NAME);
  RETURN NULL;
END
$$;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['vm_nics', 'networks', 'images', 'templates', 'template_images', 'snapshots', 'hosts',
                            'api_tokens', 'vm_drives', 'vm_mmds']
  LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I
                    FOR EACH STATEMENT EXECUTE FUNCTION nqvm_notify_change()', t || '_changed', t);
  END LOOP;
END
$$;

CREATE FUNCTION nqvm_notify_vms_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE ids text;
BEGIN
  -- Transition tables cannot be shared by several events: each trigger below names its own as `changed`.
  SELECT CASE WHEN count(*) > 100 THEN '*' ELSE string_agg(id::text, ',') END INTO ids FROM changed;
  IF ids IS NOT NULL THEN
    PERFORM pg_notify('nqvm_changes', 'vms:' || ids);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER vms_inserted AFTER INSERT ON vms REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION nqvm_notify_vms_changed();
CREATE TRIGGER vms_updated AFTER UPDATE ON vms REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION nqvm_notify_vms_changed();
CREATE TRIGGER vms_deleted AFTER DELETE ON vms REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION nqvm_notify_vms_changed();

CREATE FUNCTION nqvm_notify_events_added() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE span text;
BEGIN
  SELECT min(id) || '-' || max(id) INTO span FROM added;
  IF span IS NOT NULL THEN
    PERFORM pg_notify('nqvm_changes', 'events:' || span);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER events_added AFTER INSERT ON events REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION nqvm_notify_events_added();
