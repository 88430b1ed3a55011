-- A token's scope: the permissions it was minted with (NULL: all of its user's). Checked on every request.
ALTER TABLE api_tokens ADD COLUMN permissions text[];
