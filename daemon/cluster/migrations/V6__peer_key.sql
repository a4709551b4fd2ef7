-- Nodes prove who they are to each other: every request one node forwards to another (or asks
-- of it for its part of a merged answer), and every answer, is signed with HMAC-SHA256 under
-- this key. The first node that starts on this schema makes it (32 random bytes); every node
-- reads it at start. It never leaves the database and the nodes' memory.
CREATE TABLE peer_key (
    id          smallint PRIMARY KEY CHECK (id = 1),
    key         bytea NOT NULL CHECK (length(key) = 32),
    made_at     timestamptz NOT NULL DEFAULT now()
);
