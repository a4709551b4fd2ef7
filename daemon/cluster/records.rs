//! The store's PostgreSQL backend: the records of each workspace are rows (tag, record folder,
//! file name, bytes). A change is one statement (so one transaction and one round trip), made
//! only under the current epoch of the workspace's lease held by this run of this node: the
//! statement reads the lease row `FOR SHARE` first and every change it makes joins that row,
//! so a takeover (which updates that row) waits for the change or finds it done, and a
//! statement that finds the lease gone changes nothing.

use super::written::View;
use super::{io_error, Cluster};
use crate::store::{Backend, Damage, Damaged, FolderFile, Op, RecordFiles};
use crate::workspace::key_dir_name;
use postgres::types::ToSql;
use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The start of every fenced statement: `f`, the workspace's lease row ($1 tag) when this run
/// of this node ($2 node, $3 instance) holds it under epoch $4 and it has not expired, locked
/// `FOR SHARE`. Every change the statement makes must join `f` (no row: no change); the
/// statement ends with `SELECT count(*) FROM f`, 0 when the lease is gone. Under READ
/// COMMITTED a takeover committed while the statement waited for the row is seen (the row is
/// checked again at its newest version), so the check is as exact as a separate `SELECT ...
/// FOR SHARE` in a transaction, without the transaction's extra round trips.
macro_rules! fence {
    () => {
        concat!(
            "WITH f AS MATERIALIZED (SELECT epoch FROM leases WHERE tag = $1 AND node = $2
             AND instance = $3 AND epoch = $4 AND expires_at > ",
            now!(),
            " FOR SHARE)"
        )
    };
}

/// The fenced change of a record folder, `gone` then `put`: $5 folder, $6 names removed, $7
/// names written with $8 bytes, those `$which` (`""`: all); `put` ends with `$returning`
/// (`""`: nothing returned).
macro_rules! folder_change {
    ($which:literal, $returning:literal) => {
        concat!(
            fence!(),
            ", gone AS (DELETE FROM records r USING f
                WHERE r.tag = $1 AND r.dir = $5 AND r.name = ANY($6::text[])),
             put AS (INSERT INTO records (tag, dir, name, bytes, epoch)
                SELECT $1, $5::text, u.name, u.bytes, f.epoch
                FROM f, unnest($7::text[], $8::bytea[]) AS u(name, bytes) ",
            $which,
            " ON CONFLICT (tag, dir, name) DO UPDATE SET bytes = EXCLUDED.bytes, epoch = EXCLUDED.epoch ",
            $returning,
            ")"
        )
    };
}

/// A record folder's change (see `folder_change!`).
const CHANGE: &str = concat!(folder_change!("", ""), " SELECT count(*) FROM f");

/// The SQLSTATE `baton_already_decided()` (migration V11) raises: a change that would write a
/// decision over another one of its record. The statement is rolled back: nothing changed.
const ALREADY_DECIDED: &str = "BT409";

/// The names of the workspaces but `$2` that hold a record folder `$1`, leased or not: a
/// workspace whose node stalls past its lease still holds its keys (a reviewer may be reading
/// one of them there), so another workspace never takes one meanwhile.
const KEY_ELSEWHERE: &str = "SELECT DISTINCT w.name FROM records r
     JOIN workspaces w ON w.tag = r.tag
     WHERE r.dir = $1 AND r.tag <> $2 ORDER BY w.name";

/// A record folder's change, as `CHANGE`, that also seals it: its manifest (`seals`), the
/// manifest as committed (the row as the conflict locks it: its newest version, so two changes
/// of one folder never lose each other's names) less the names removed, with the names written
/// and their sha256, never computed from the rows as they are (which would seal their damage);
/// and lists the folder in the workspace's ledger of folders (its `manifests` row of `dir`
/// `''`), the first time only.
/// It also answers the folder as the change left it
/// (`written`): a first row with the fence's count (0: the lease is gone, nothing changed) and
/// no name, then a row per file with its size and stamp (as `Backend::stamps`); the files the
/// change did not write come with their bytes when named in $9 and no larger than $10 (those
/// it wrote, the node has). The snapshot the files not written are read from is exact: only
/// the holder of the lease writes records, and `Written` keeps nothing when two changes of
/// one folder overlap.
///
/// A decision (`decision.json`) is not written by `put` but by `decided`, only where the record
/// has none, or has this one byte for byte (a change made again): the conflict locks the row
/// and compares its newest version, so of two writers racing to decide one record (a stale node
/// whose fence check raced, a replay, two nodes each believing they hold the workspace) the
/// second finds the first's decision. Then `baton_already_decided()` raises, and the whole
/// statement (records, manifest, ledger) is rolled back: a decided record's decision is never
/// written over, and the loser is told (`already_decided`), never answered as committed.
const FOLDER_CHANGE: &str = concat!(
    folder_change!(
        "WHERE u.name <> 'decision.json'",
        "RETURNING name, length(bytes)::bigint AS size, xmin::text AS xmin"
    ),
    ",
     decided AS (INSERT INTO records (tag, dir, name, bytes, epoch)
        SELECT $1, $5::text, u.name, u.bytes, f.epoch
        FROM f, unnest($7::text[], $8::bytea[]) AS u(name, bytes) WHERE u.name = 'decision.json'
        ON CONFLICT (tag, dir, name) DO UPDATE SET epoch = EXCLUDED.epoch
        WHERE records.bytes = EXCLUDED.bytes
        RETURNING name, length(bytes)::bigint AS size, xmin::text AS xmin),
     sealed AS (INSERT INTO manifests (tag, dir, files, epoch)
        SELECT $1, $5::text, coalesce((SELECT jsonb_object_agg(u.name, encode(sha256(u.bytes), 'hex'))
            FROM unnest($7::text[], $8::bytea[]) AS u(name, bytes)), '{}'::jsonb), f.epoch
        FROM f
        ON CONFLICT (tag, dir) DO UPDATE
        SET files = (manifests.files - $6::text[]) || EXCLUDED.files, epoch = EXCLUDED.epoch),
     listed AS (INSERT INTO manifests (tag, dir, files, epoch)
        SELECT $1, '', jsonb_build_object($5::text, true), f.epoch FROM f
        ON CONFLICT (tag, dir) DO UPDATE
        SET files = manifests.files || EXCLUDED.files, epoch = EXCLUDED.epoch
        WHERE NOT manifests.files ? $5::text),
     kept AS (SELECT r.name, length(r.bytes)::bigint AS size, r.xmin::text AS xmin,
            CASE WHEN r.name = ANY($9::text[]) AND length(r.bytes) <= $10::bigint THEN r.bytes END AS bytes
        FROM records r, f
        WHERE r.tag = $1 AND r.dir = $5 AND r.name <> ALL($6::text[]) AND r.name <> ALL($7::text[]))
     SELECT count(*) + coalesce((SELECT baton_already_decided($1, $5::text)
            WHERE 'decision.json' = ANY($7::text[]) AND EXISTS (SELECT 1 FROM f)
                AND NOT EXISTS (SELECT 1 FROM decided)), 0),
        NULL::text, NULL::bigint, NULL::text, NULL::bytea FROM f
     UNION ALL SELECT NULL, name, size, xmin, NULL FROM put
     UNION ALL SELECT NULL, name, size, xmin, NULL FROM decided
     UNION ALL SELECT NULL, name, size, xmin, bytes FROM kept"
);

/// A new workspace's row: $5 its name.
const CREATE: &str = concat!(
    fence!(),
    ", made AS (INSERT INTO workspaces (tag, name) SELECT $1, $5::text FROM f ON CONFLICT DO NOTHING)
     SELECT count(*) FROM f"
);

/// The anchor of a workspace's audit log: $5 the anchor as JSON text; and with it the
/// workspace's `handed` mark left unwritten (`marks`), $6 as JSON text, when there is one.
pub(super) const ANCHOR: &str = concat!(
    fence!(),
    ", put AS (INSERT INTO anchors (tag, anchor, epoch) SELECT $1, $5::text::jsonb, f.epoch FROM f
        ON CONFLICT (tag) DO UPDATE SET anchor = EXCLUDED.anchor, epoch = EXCLUDED.epoch),
     handed AS (INSERT INTO handed (tag, mark, epoch) SELECT $1, $6::text::jsonb, f.epoch FROM f
        WHERE $6::text IS NOT NULL
        ON CONFLICT (tag) DO UPDATE SET mark = EXCLUDED.mark, epoch = EXCLUDED.epoch)
     SELECT count(*) FROM f"
);

#[derive(Debug)]
pub(super) struct Rows {
    cluster: Arc<Cluster>,
}

impl Rows {
    pub(super) fn new(cluster: Arc<Cluster>) -> Rows {
        Rows { cluster }
    }

    /// Runs `sql` (a statement that starts with `fence!()`; its own parameters from $5, in
    /// `params`) under the workspace's current epoch: one statement, so one transaction.
    pub(super) fn fenced(
        &self,
        tag: &str,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> io::Result<()> {
        let epoch = self.cluster.leases.epoch(tag).ok_or_else(|| stale(tag))?;
        self.fenced_under(tag, epoch, sql, params)
    }

    /// `fenced` under `epoch`.
    pub(super) fn fenced_under(
        &self,
        tag: &str,
        epoch: i64,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> io::Result<()> {
        let mut client = self.cluster.client().map_err(unsent)?;
        let fence: [&(dyn ToSql + Sync); 4] =
            [&tag, &self.cluster.node, &self.cluster.instance, &epoch];
        let all: Vec<&(dyn ToSql + Sync)> = fence.iter().chain(params).copied().collect();
        let row = client.query_one(sql, &all).map_err(io_error)?;
        match row.get::<_, i64>(0) {
            0 => Err(stale(tag)),
            _ => Ok(()),
        }
    }

    /// Refuses a change of a workspace whose rows are damaged (`seals`): it is served
    /// read-only, so that nothing is decided from, or over, a record read wrong.
    fn writable(&self, tag: &str) -> io::Result<()> {
        match self.cluster.seals.of(tag) {
            damage if damage.is_empty() => Ok(()),
            damage => Err(Damaged(damage).into_io()),
        }
    }

    /// Changes the files of record folder `dir` (`""`: the workspace's own files) in one
    /// fenced statement. Its ops are applied in order, so a later op on a name wins (one
    /// statement cannot change a row twice).
    fn change(&self, tag: &str, dir: &str, ops: &[Op]) -> io::Result<()> {
        let mut last: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Put(name, bytes) => last.insert(*name, Some(*bytes)),
                Op::Remove(name) => last.insert(*name, None),
            };
        }
        let gone: Vec<&str> = last
            .iter()
            .filter(|(_, b)| b.is_none())
            .map(|(n, _)| *n)
            .collect();
        let (names, bytes): (Vec<&str>, Vec<&[u8]>) =
            last.iter().filter_map(|(n, b)| b.map(|b| (*n, b))).unzip();
        if dir.is_empty() {
            return self.fenced(tag, CHANGE, &[&dir, &gone, &names, &bytes]);
        }
        let epoch = self.cluster.leases.epoch(tag).ok_or_else(|| stale(tag))?;
        let written = &self.cluster.written;
        let began = written.begin(tag, dir, epoch);
        let view = self.change_folder(tag, dir, epoch, &gone, &names, &bytes);
        let (out, view) = match view {
            Ok(Some(view)) => (Ok(()), Some(view)),
            Ok(None) => (Err(stale(tag)), None),
            Err(e) => (Err(e), None),
        };
        written.end(tag, dir, epoch, began, view);
        out
    }

    /// Runs `FOLDER_CHANGE` under `epoch`: the folder as the change left it, or `None` when
    /// the lease is gone (nothing changed).
    fn change_folder(
        &self,
        tag: &str,
        dir: &str,
        epoch: i64,
        gone: &[&str],
        names: &[&str],
        bytes: &[&[u8]],
    ) -> io::Result<Option<View>> {
        let (asked, max) = self.cluster.written.asked();
        let max_i = i64::try_from(max).unwrap_or(i64::MAX);
        let mut client = self.cluster.client().map_err(unsent)?;
        let c = &self.cluster;
        let rows = client
            .query(
                FOLDER_CHANGE,
                &[
                    &tag,
                    &c.node,
                    &c.instance,
                    &epoch,
                    &dir,
                    &gone,
                    &names,
                    &bytes,
                    &asked,
                    &max_i,
                ],
            )
            .map_err(|e| match e.code().map(|c| c.code()) {
                Some(ALREADY_DECIDED) => already_decided(tag, dir),
                _ => io_error(e),
            })?;
        let mut fenced = 0;
        let mut files = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(name) = row.get::<_, Option<String>>(1) else {
                fenced = row.get::<_, Option<i64>>(0).unwrap_or(0);
                continue;
            };
            let size: i64 = row.get(2);
            let xmin: String = row.get(3);
            let mut kept: Option<Vec<u8>> = row.get(4);
            if let Some(i) = names.iter().position(|n| *n == name) {
                let wanted = asked.contains(&name) && size as u64 <= max;
                kept = wanted.then(|| bytes[i].to_vec());
            }
            files.push(FolderFile {
                name,
                size: size as u64,
                stamp: format!("{size}:{xmin}"),
                bytes: kept,
            });
        }
        if fenced == 0 {
            return Ok(None);
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Some(View { epoch, files }))
    }
}

/// The error of a write that found no connection to the database (down, or the pool timed
/// out): no statement was sent, so nothing committed. Told apart from a statement whose answer
/// was lost, whose outcome is read back, so that an outage never holds the keys written
/// meanwhile (a handoff written during one is received once the database is back).
fn unsent(e: super::ClusterError) -> io::Error {
    crate::store::NotCommitted::wrap(io_error(e))
}

/// The error of a write refused because this node's lease on the workspace is gone.
/// The fenced statement changed nothing: its transaction committed nothing.
pub(super) fn stale(tag: &str) -> io::Error {
    crate::store::NotCommitted::wrap(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("this node no longer holds the lease of workspace {tag}; the write was refused (another node serves it now)"),
    ))
}

/// The error of a change refused because its record already holds another decision
/// (`FOLDER_CHANGE`): the statement was rolled back, so nothing of it committed.
fn already_decided(tag: &str, dir: &str) -> io::Error {
    crate::store::NotCommitted::wrap(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("the handoff's record (handoffs/{dir} of workspace {tag}) is already decided: the cluster's database holds another decision for it, written by another node or an earlier run of this one; this decision was refused and nothing was changed (a decision is never written over another): open the handoff again to see the decision it holds"),
    ))
}

/// (record folder, file name) of a path relative to a workspace's records.
fn split(rel: &Path) -> io::Result<(String, String)> {
    let parts: Vec<&str> = rel
        .iter()
        .map(|p| p.to_str().unwrap_or(""))
        .collect::<Vec<_>>();
    match parts.as_slice() {
        ["handoffs", dir, name] => Ok((dir.to_string(), name.to_string())),
        [name] => Ok((String::new(), name.to_string())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a record path: {}", rel.display()),
        )),
    }
}

impl Backend for Rows {
    fn exists(&self, tag: &str) -> io::Result<bool> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let row = client
            .query_opt("SELECT 1 FROM workspaces WHERE tag = $1", &[&tag])
            .map_err(io_error)?;
        Ok(row.is_some())
    }

    fn create(&self, tag: &str, name: &str) -> io::Result<()> {
        self.fenced(tag, CREATE, &[&name])
    }

    fn read(&self, tag: &str, rel: &Path) -> io::Result<Option<Vec<u8>>> {
        let (dir, name) = split(rel)?;
        let mut client = self.cluster.client().map_err(io_error)?;
        let row = client
            .query_opt(
                "SELECT bytes FROM records WHERE tag = $1 AND dir = $2 AND name = $3",
                &[&tag, &dir, &name],
            )
            .map_err(io_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    fn write(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.writable(tag)?;
        self.overwrite(tag, rel, bytes)
    }

    /// A memo, as any record (sealed too), but written while the rows are damaged, as the
    /// embedded store writes memos then.
    fn overwrite(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        let (dir, name) = split(rel)?;
        self.change(tag, &dir, &[Op::Put(&name, bytes)])
    }

    fn remove(&self, tag: &str, rel: &Path) -> io::Result<()> {
        self.writable(tag)?;
        let (dir, name) = split(rel)?;
        self.change(tag, &dir, &[Op::Remove(&name)])
    }

    fn apply(&self, tag: &str, key: &str, ops: &[Op]) -> io::Result<()> {
        self.writable(tag)?;
        let dir = key_dir_name(key);
        self.change(tag, &dir, ops)
    }

    /// 1 for every new record: a key with rows in another workspace of the cluster, served or
    /// not, is never taken (`key_elsewhere`), and rows are never removed, so a key new to a
    /// workspace never had a record (its revisions cannot repeat).
    fn next_revision(&self, _key: &str) -> io::Result<u32> {
        Ok(1)
    }

    /// As `apply`: the rows themselves are the memory `next_revision` answers from.
    fn apply_revision(&self, tag: &str, key: &str, _revision: u32, ops: &[Op]) -> io::Result<()> {
        self.apply(tag, key, ops)
    }

    /// Nothing to finish: a transaction a crash interrupted never happened.
    fn recover(&self, _tag: &str, _dir_name: &str) -> io::Result<()> {
        Ok(())
    }

    fn record_dirs(&self, tag: &str) -> io::Result<Vec<String>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let rows = client
            .query(
                "SELECT DISTINCT dir FROM records WHERE tag = $1 AND dir <> '' ORDER BY dir",
                &[&tag],
            )
            .map_err(io_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Every other workspace the cluster has records of, served now or not.
    fn key_elsewhere(&self, tag: &str, key: &str) -> io::Result<Vec<String>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let rows = client
            .query(KEY_ELSEWHERE, &[&key_dir_name(key), &tag])
            .map_err(io_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Every record of the workspace and every folder's manifest in one query, each folder
    /// checked against its manifest (`seals`): a damaged one is an error carrying its damage,
    /// and the workspace is read-only from then on. What a load finds replaces what the node
    /// knew of the workspace's damage. (The default, a query for the folders, then one for each
    /// folder's names and one for each file, cost a workspace of 100 records 400 round trips
    /// at each takeover.)
    fn load_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let rows = client
            .query(
                r#"SELECT dir, name, bytes, NULL::text AS files FROM records WHERE tag = $1 AND dir <> ''
                   UNION ALL SELECT dir, NULL, NULL, files::text FROM manifests WHERE tag = $1"#,
                &[&tag],
            )
            .map_err(io_error)?;
        let mut files = Vec::with_capacity(rows.len());
        let mut manifests = BTreeMap::new();
        for row in rows {
            match row.get::<_, Option<String>>(3) {
                Some(manifest) => {
                    manifests.insert(row.get(0), manifest);
                }
                None => files.push((row.get(0), row.get(1), row.get(2))),
            }
        }
        // Sorted by bytes (`COLLATE "C"`), as the embedded store's names are.
        files.sort_by(|a: &(String, String, Vec<u8>), b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        let (folders, mut damage) = super::seals::folders(files, manifests);
        let out = folders
            .into_iter()
            .map(|(dir, checked)| match checked {
                Ok(files) => (dir, Ok(files)),
                Err(found) => {
                    damage.extend(found.iter().cloned());
                    (dir, Err(Damaged(found).into_io()))
                }
            })
            .collect();
        self.cluster.seals.loaded(tag, damage);
        Ok(out)
    }

    fn damaged(&self, tag: &str) -> Vec<Damage> {
        self.cluster.seals.of(tag)
    }

    fn newly_damaged(&self) -> Vec<(String, Vec<Damage>)> {
        self.cluster.seals.untold()
    }

    fn damaged_files(&self) -> usize {
        self.cluster.seals.files()
    }

    fn note_damaged(&self, tag: &str, damage: &[Damage]) {
        self.cluster.seals.add(tag, damage)
    }

    fn files_of(&self, tag: &str, dir_name: &str) -> Vec<String> {
        let rows = self.cluster.client().ok().and_then(|mut c| {
            c.query(
                "SELECT name FROM records WHERE tag = $1 AND dir = $2 ORDER BY name",
                &[&tag, &dir_name],
            )
            .ok()
        });
        rows.unwrap_or_default().iter().map(|r| r.get(0)).collect()
    }

    /// A row's stamp is the transaction that wrote it (`xmin`), new at every change: one
    /// query a folder, no record read.
    fn stamps(&self, tag: &str, dir_name: &str) -> io::Result<Vec<(String, u64, String)>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let rows = client
            .query(
                "SELECT name, length(bytes)::bigint, xmin::text FROM records
                 WHERE tag = $1 AND dir = $2 ORDER BY name",
                &[&tag, &dir_name],
            )
            .map_err(io_error)?;
        Ok(rows
            .iter()
            .map(|r| {
                let size: i64 = r.get(1);
                let xmin: String = r.get(2);
                (r.get(0), size as u64, format!("{size}:{xmin}"))
            })
            .collect())
    }

    /// Stamps and the asked-for bytes in one query (see `stamps`); none when this node's last
    /// change of the folder left it so under the epoch it still holds (`written`).
    fn folder(
        &self,
        tag: &str,
        dir_name: &str,
        with_bytes: &[&str],
        max: u64,
    ) -> io::Result<Vec<FolderFile>> {
        let epoch = self.cluster.leases.epoch(tag);
        let known = self
            .cluster
            .written
            .folder(tag, dir_name, epoch, with_bytes, max);
        if let Some(files) = known {
            return Ok(files);
        }
        let mut client = self.cluster.client().map_err(io_error)?;
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let rows = client
            .query(
                "SELECT name, length(bytes)::bigint, xmin::text,
                        CASE WHEN name = ANY($3::text[]) AND length(bytes) <= $4::bigint THEN bytes END
                 FROM records WHERE tag = $1 AND dir = $2 ORDER BY name",
                &[&tag, &dir_name, &with_bytes, &max],
            )
            .map_err(io_error)?;
        Ok(rows
            .iter()
            .map(|r| {
                let size: i64 = r.get(1);
                let xmin: String = r.get(2);
                FolderFile {
                    name: r.get(0),
                    size: size as u64,
                    stamp: format!("{size}:{xmin}"),
                    bytes: r.get(3),
                }
            })
            .collect())
    }
}
