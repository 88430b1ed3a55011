-- The manager's certificate authority for mutual TLS with the agents: one row, shared by every manager of the
-- database; its private key sealed with the secret key (NQVM_SECRET_KEY), like host secrets.
CREATE TABLE manager_ca (
  id integer PRIMARY KEY CHECK (id = 1),
  cert_pem text NOT NULL,
  key_enc text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
