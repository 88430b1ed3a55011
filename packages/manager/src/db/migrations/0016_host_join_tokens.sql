-- Host join tokens: made by an admin, shown once, stored as a SHA-256 hash; each expires and joins one host.
CREATE TABLE host_join_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  token_hash text NOT NULL UNIQUE,
  description text NOT NULL DEFAULT '',
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  host_id uuid REFERENCES hosts (id) ON DELETE SET NULL
);
