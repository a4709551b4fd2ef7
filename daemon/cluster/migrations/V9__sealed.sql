-- Whether a node seals its delivery rows (see cluster::deliveries): false for a node of a baton
-- from before seals still running when this migration ran, whose rows have no seal.
ALTER TABLE nodes ADD COLUMN seals boolean NOT NULL DEFAULT false;

-- The mark that every delivery row is sealed: left (one row) by the first node that found no
-- live node that does not seal and no row without a seal, having sealed the rows an older
-- baton wrote. From then on a row without a seal was not written by a baton, and is damaged
-- (listed dead, never sent). Only deleting this row by hand makes unsealed rows welcome again.
CREATE TABLE deliveries_sealed (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    node        text NOT NULL,
    sealed_at   timestamptz NOT NULL DEFAULT now()
);
