CREATE TABLE images (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  kind text NOT NULL CHECK (kind IN ('kernel', 'initrd', 'rootfs', 'volume')),
  description text NOT NULL DEFAULT '',
  state text NOT NULL CHECK (state IN ('importing', 'ready')),
  sha256 text CHECK (sha256 ~ '^[a-f0-9]{64}$'),
  size_bytes bigint,
  bytes_done bigint NOT NULL DEFAULT 0,
  bytes_total bigint,
  source jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (state <> 'ready' OR (sha256 IS NOT NULL AND size_bytes IS NOT NULL))
);
CREATE INDEX images_sha256_idx ON images(sha256);
CREATE INDEX images_kind_name_idx ON images(kind, name);

CREATE TABLE templates (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  spec jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Which images a template references; the restricting foreign key stops an image being deleted under a template.
CREATE TABLE template_images (
  template_id uuid NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
  image_id uuid NOT NULL REFERENCES images(id) ON DELETE RESTRICT,
  PRIMARY KEY (template_id, image_id)
);
CREATE INDEX template_images_image_idx ON template_images(image_id);
