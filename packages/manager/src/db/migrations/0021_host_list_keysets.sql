-- Keyset pages of the hosts list (by name, ties by id) and of the join-tokens list (newest first, ties by id).
CREATE INDEX hosts_name_id_idx ON hosts (name, id);
CREATE INDEX host_join_tokens_created_idx ON host_join_tokens (created_at, id);
