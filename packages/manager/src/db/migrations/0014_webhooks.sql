-- Webhooks: events matching a filter are POSTed, signed, to a URL. Every event written (by any manager, in any
-- transaction) gets its deliveries in that same transaction through the trigger below, so none is lost to a crash.
CREATE TABLE webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigserial NOT NULL UNIQUE,
  url text NOT NULL,
  description text NOT NULL DEFAULT '',
  events text[] NOT NULL,
  secret_enc text NOT NULL,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per (webhook, event): claimed by lease with SKIP LOCKED by any manager, retried with backoff.
CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigserial NOT NULL UNIQUE,
  webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event_id bigint NOT NULL,
  event_type text NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivering', 'succeeded', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz DEFAULT now(),
  lease_owner text,
  lease_expires_at timestamptz,
  response_code integer,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz,
  UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_leased_idx ON webhook_deliveries (lease_expires_at) WHERE state = 'delivering';
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, seq);

-- `*` matches anything, `vm.*` any action of a VM; everything else literally (LIKE's own wildcards escaped).
CREATE FUNCTION nqvm_webhook_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text := NEW.resource_type || '.' || NEW.action;
BEGIN
  INSERT INTO webhook_deliveries (webhook_id, event_id, event_type)
  SELECT w.id, NEW.id, kind FROM webhooks w
   WHERE w.enabled
     AND EXISTS (SELECT 1 FROM unnest(w.events) p
                  WHERE kind LIKE replace(replace(replace(p, '\', '\\'), '_', '\_'), '*', '%'))
  ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$$;
CREATE TRIGGER events_webhook_fanout AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION nqvm_webhook_fanout();
