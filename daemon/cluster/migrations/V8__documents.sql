-- State of the whole cluster kept as one JSON document per name (see store::documents): the
-- reviewers' scoped grants and chosen digest cadences. Every node reads a document at each use and changes it under the
-- row's lock (SELECT ... FOR UPDATE), so a grant's last use is taken once in the cluster.
CREATE TABLE documents (
    name        text PRIMARY KEY,
    body        bytea NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
