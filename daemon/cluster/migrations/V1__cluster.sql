-- baton's cluster schema: PostgreSQL is the system of record of several daemons (nodes) that
-- serve one workspaces share. Times are the database's own (now()), so nodes' clocks never
-- decide who holds a lease.

-- The daemons. `instance` is new at each start, so a restarted node is a new holder.
CREATE TABLE nodes (
    node        text PRIMARY KEY,
    instance    text NOT NULL,
    public_url  text NOT NULL,
    started_at  timestamptz NOT NULL,
    seen_at     timestamptz NOT NULL
);

-- The workspaces ever served (by their tag: name and path digest).
CREATE TABLE workspaces (
    tag         text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Who serves each workspace. `epoch` counts up at every change of holder; every write for the
-- workspace names the epoch it was made under and is refused when it is not the current one.
CREATE TABLE leases (
    tag         text PRIMARY KEY,
    node        text NOT NULL,
    instance    text NOT NULL,
    epoch       bigint NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX leases_node ON leases (node);

-- The records of each workspace (what data_dir/workspaces/<tag>/ holds for one daemon):
-- `dir` is the record folder of a handoff, '' for the workspace's own records.
CREATE TABLE records (
    tag         text NOT NULL,
    dir         text NOT NULL,
    name        text NOT NULL,
    bytes       bytea NOT NULL,
    epoch       bigint NOT NULL,
    PRIMARY KEY (tag, dir, name)
);

-- Where each workspace's audit log must end (see audit::anchor).
CREATE TABLE anchors (
    tag         text PRIMARY KEY,
    anchor      jsonb NOT NULL,
    epoch       bigint NOT NULL
);
