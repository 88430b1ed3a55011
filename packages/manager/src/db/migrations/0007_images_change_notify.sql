-- Every change to the images table, by any manager or by hand, tells listeners so cached list pages are dropped.
CREATE FUNCTION nqvm_notify_images_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('nqvm_images_changed', '');
  RETURN NULL;
END
$$;
CREATE TRIGGER images_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON images
  FOR EACH STATEMENT EXECUTE FUNCTION nqvm_notify_images_changed();
