-- Projects: every VM, image, template, snapshot and API token belongs to one. Existing rows move into `default`
-- (a fixed id, so code and tests can name it), every existing user becomes a member of it: admins (global admins
-- anyway) as owners, the others as operators. A member holds one role per project: owner, operator or viewer.
CREATE TABLE projects (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE CHECK (name ~ '^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$'),
  description text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO projects (id, name, description)
  VALUES ('00000000-0000-4000-8000-000000000001', 'default', 'The project every existing resource moved into');

CREATE TABLE project_members (
  project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('owner', 'operator', 'viewer')),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members(user_id, created_at);
INSERT INTO project_members (project_id, user_id, role)
  SELECT '00000000-0000-4000-8000-000000000001', id, CASE WHEN role = 'admin' THEN 'owner' ELSE 'operator' END
  FROM users;

-- A constant default adds the column without rewriting the table; creates name their project explicitly.
ALTER TABLE vms ADD COLUMN project_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
  REFERENCES projects(id) ON DELETE RESTRICT;
ALTER TABLE images ADD COLUMN project_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
  REFERENCES projects(id) ON DELETE RESTRICT;
ALTER TABLE templates ADD COLUMN project_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
  REFERENCES projects(id) ON DELETE RESTRICT;
ALTER TABLE snapshots ADD COLUMN project_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000001'
  REFERENCES projects(id) ON DELETE RESTRICT;
-- A token is scoped to the project it was minted for; NULL: every project its user reaches (an admin's: all).
ALTER TABLE api_tokens ADD COLUMN project_id uuid REFERENCES projects(id) ON DELETE CASCADE;
CREATE INDEX vms_project_idx ON vms(project_id);
CREATE INDEX images_project_idx ON images(project_id);
CREATE INDEX templates_project_idx ON templates(project_id);
CREATE INDEX snapshots_project_idx ON snapshots(project_id);

-- Public images and templates are readable by every project and writable only by their own.
ALTER TABLE images ADD COLUMN public boolean NOT NULL DEFAULT false;
ALTER TABLE templates ADD COLUMN public boolean NOT NULL DEFAULT false;
