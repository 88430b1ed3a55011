-- Users can be disabled (no login; their sessions and tokens are refused at authentication) and show when they last
-- logged in.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN last_login_at timestamptz;
