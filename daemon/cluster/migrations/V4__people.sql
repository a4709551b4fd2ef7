-- Reviewers' state that belongs to no workspace, shared by the nodes so that each acts on the
-- same: who is away (a route assigns them nothing on any node), each assigning route's place
-- in its round, and what each reviewer last saw of each handoff (the queue's marks).
CREATE TABLE away (
    name        text PRIMARY KEY,
    since       text NOT NULL
);

CREATE TABLE rota (
    route       text PRIMARY KEY,
    last        text NOT NULL
);

CREATE TABLE seen (
    name        text NOT NULL,
    key         text NOT NULL,
    revision    integer NOT NULL,
    approvals   integer NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, key)
);
