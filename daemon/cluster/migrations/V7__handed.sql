-- How far each workspace's audit log was handed on to the outbox (see audit::handed): the
-- workspace's, not a node's, so the node that takes a workspace over hands on only what its
-- predecessor had not. Written under the workspace's lease (`epoch`), as the anchors are.
CREATE TABLE handed (
    tag         text PRIMARY KEY,
    mark        jsonb NOT NULL,
    epoch       bigint NOT NULL
);
