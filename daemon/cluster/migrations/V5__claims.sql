-- Open claims by holder across the cluster: a node weighs a reviewer's load (`least_loaded`,
-- the reviewers' page) with the claims held in the workspaces other nodes serve, read from
-- their `claim.json` records; this index finds those rows without reading every record.
CREATE INDEX records_claims ON records (tag, dir) WHERE name = 'claim.json';
