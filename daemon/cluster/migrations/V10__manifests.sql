-- The manifest of each record folder (see cluster::seals): every file the store committed
-- there, name -> sha256 (hex) of its bytes, written by the same statement as the rows it
-- lists, under the lease. A row missing, changed or not listed, or a folder whose manifest is
-- gone, is damage when the folder is loaded: never read as absent or as another state. The row
-- of `dir` '' is the workspace's ledger of folders: every folder a change was ever committed
-- in (name -> true), so a folder deleted whole, rows and manifest, is damage too.
CREATE TABLE manifests (
    tag     text NOT NULL,
    dir     text NOT NULL,
    files   jsonb NOT NULL,
    epoch   bigint NOT NULL,
    PRIMARY KEY (tag, dir)
);

-- The folders written before manifests: sealed as they are now (damage done before this
-- migration cannot be told).
INSERT INTO manifests (tag, dir, files, epoch)
SELECT tag, dir, jsonb_object_agg(name, encode(sha256(bytes), 'hex')), max(epoch)
FROM records WHERE dir <> '' GROUP BY tag, dir;

INSERT INTO manifests (tag, dir, files, epoch)
SELECT tag, '', jsonb_object_agg(dir, true), max(epoch)
FROM (SELECT tag, dir, max(epoch) AS epoch FROM records WHERE dir <> '' GROUP BY tag, dir) d
GROUP BY tag;
