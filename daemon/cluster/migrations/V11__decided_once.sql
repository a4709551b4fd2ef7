-- A record's decision is written once (see cluster::records, FOLDER_CHANGE): a change that
-- would write a decision over another one of its record calls this, which raises BT409, and
-- the whole statement is rolled back. Every node of the cluster must run a baton with this
-- migration (one without it writes decisions unconditionally): upgrade every node together.
CREATE FUNCTION baton_already_decided(tag text, dir text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'handoffs/% of workspace % already holds another decision', dir, tag
        USING ERRCODE = 'BT409';
END
$$;
