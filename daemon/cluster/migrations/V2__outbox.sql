-- The outbox of each node: its notifications to webhooks and by email, with their attempts
-- (`doc` is the delivery as the spool file holds it). A live node adopts the pending
-- deliveries of a node that is gone, so they are sent within a retry interval.
CREATE TABLE deliveries (
    id          text PRIMARY KEY,
    node        text NOT NULL,
    state       text NOT NULL,
    doc         jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_pending ON deliveries (node) WHERE state = 'pending';
