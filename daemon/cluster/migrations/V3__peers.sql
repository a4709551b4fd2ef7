-- Any node answers for every workspace: it forwards a request about a workspace it does not
-- serve to the node that does, so each node says where its peers reach it.
ALTER TABLE nodes ADD COLUMN peer_url text NOT NULL DEFAULT '';

-- A handoff's key -> its workspace (the lookup of a forwarded request).
CREATE INDEX records_dir ON records (dir);
CREATE INDEX workspaces_name ON workspaces (name);

-- Sign-in sessions, shared so a person signed in on one node is signed in on all. Only the
-- sha256 of the browser's id is kept, as in data_dir/sessions.json for one daemon.
CREATE TABLE sessions (
    id_sha256   text PRIMARY KEY,
    session     jsonb NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Secrets the nodes share (hashes only): the admin token's sha256 and the admin password's
-- argon2 hash, made by the first node and used by all.
CREATE TABLE secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL
);
