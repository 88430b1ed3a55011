-- An image name has versions: each import under a name is its next version (1, 2, …), optionally tagged, and
-- `latest` marks the one a name resolves to (moved on import, pointed back by rollback). VMs and templates
-- reference a version's row, so they keep exactly the version they were made from.
ALTER TABLE images ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version > 0);
ALTER TABLE images ADD COLUMN tag text CHECK (tag ~ '^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$');
ALTER TABLE images ADD COLUMN latest boolean NOT NULL DEFAULT false;
UPDATE images SET latest = true WHERE state = 'ready';
ALTER TABLE images DROP CONSTRAINT images_name_key;
CREATE UNIQUE INDEX images_name_version_key ON images(name, version);
CREATE UNIQUE INDEX images_name_tag_key ON images(name, tag) WHERE tag IS NOT NULL;
CREATE UNIQUE INDEX images_name_latest_key ON images(name) WHERE latest;
ALTER TABLE images ADD CHECK (NOT latest OR state = 'ready');
