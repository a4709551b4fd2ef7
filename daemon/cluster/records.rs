//! The store's PostgreSQL backend: the records of each workspace are rows (tag, record folder,
//! file name, bytes). A change is one transaction, made only under the current epoch of the
//! workspace's lease held by this run of this node: the lease row is read `FOR SHARE` first,
//! so a takeover (which updates that row) waits for the change or finds it done.

use super::{io_error, Cluster};
use crate::store::{Backend, Op, RecordFiles};
use crate::workspace::key_dir_name;
use postgres::Transaction;
use std::io;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct Rows {
    cluster: Arc<Cluster>,
}

impl Rows {
    pub(super) fn new(cluster: Arc<Cluster>) -> Rows {
        Rows { cluster }
    }

    /// Runs `change` in one transaction under the workspace's current epoch.
    pub(super) fn fenced(
        &self,
        tag: &str,
        change: impl FnOnce(&mut Transaction<'_>, i64) -> Result<(), postgres::Error>,
    ) -> io::Result<()> {
        let epoch = self.cluster.leases.epoch(tag).ok_or_else(|| stale(tag))?;
        let mut client = self.cluster.client().map_err(io_error)?;
        let mut tx = client.transaction().map_err(io_error)?;
        let current = tx
            .query_opt(
                concat!(
                    "SELECT 1 FROM leases WHERE tag = $1 AND node = $2 AND instance = $3
                    AND epoch = $4 AND expires_at > ",
                    now!(),
                    " FOR SHARE"
                ),
                &[&tag, &self.cluster.node, &self.cluster.instance, &epoch],
            )
            .map_err(io_error)?;
        if current.is_none() {
            return Err(stale(tag));
        }
        change(&mut tx, epoch).map_err(io_error)?;
        tx.commit().map_err(io_error)
    }
}

/// The error of a write refused because this node's lease on the workspace is gone.
fn stale(tag: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("this node no longer holds the lease of workspace {tag}; the write was refused (another node serves it now)"),
    )
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

fn put(
    tx: &mut Transaction<'_>,
    tag: &str,
    dir: &str,
    name: &str,
    bytes: &[u8],
    epoch: i64,
) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO records (tag, dir, name, bytes, epoch) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tag, dir, name) DO UPDATE SET bytes = $4, epoch = $5",
        &[&tag, &dir, &name, &bytes, &epoch],
    )
    .map(drop)
}

fn delete(
    tx: &mut Transaction<'_>,
    tag: &str,
    dir: &str,
    name: &str,
) -> Result<(), postgres::Error> {
    tx.execute(
        "DELETE FROM records WHERE tag = $1 AND dir = $2 AND name = $3",
        &[&tag, &dir, &name],
    )
    .map(drop)
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
        self.fenced(tag, |tx, _| {
            tx.execute(
                "INSERT INTO workspaces (tag, name) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&tag, &name],
            )
            .map(drop)
        })
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
        let (dir, name) = split(rel)?;
        self.fenced(tag, |tx, epoch| put(tx, tag, &dir, &name, bytes, epoch))
    }

    fn overwrite(&self, tag: &str, rel: &Path, bytes: &[u8]) -> io::Result<()> {
        self.write(tag, rel, bytes)
    }

    fn remove(&self, tag: &str, rel: &Path) -> io::Result<()> {
        let (dir, name) = split(rel)?;
        self.fenced(tag, |tx, _| delete(tx, tag, &dir, &name))
    }

    fn apply(&self, tag: &str, key: &str, ops: &[Op]) -> io::Result<()> {
        let dir = key_dir_name(key);
        self.fenced(tag, |tx, epoch| {
            for op in ops {
                match op {
                    Op::Put(name, bytes) => put(tx, tag, &dir, name, bytes, epoch)?,
                    Op::Remove(name) => delete(tx, tag, &dir, name)?,
                }
            }
            Ok(())
        })
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

    /// Every record of the workspace in one query, sorted by folder and name. (The default,
    /// a query for the folders, then one for each folder's names and one for each file, cost a
    /// workspace of 100 records 400 round trips at each takeover.)
    fn load_all(&self, tag: &str) -> io::Result<Vec<(String, io::Result<RecordFiles>)>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let rows = client
            .query(
                r#"SELECT dir, name, bytes FROM records WHERE tag = $1 AND dir <> ''
                   ORDER BY dir COLLATE "C", name COLLATE "C""#,
                &[&tag],
            )
            .map_err(io_error)?;
        let mut out: Vec<(String, io::Result<RecordFiles>)> = Vec::new();
        for row in rows {
            let (dir, file): (String, (String, Vec<u8>)) = (row.get(0), (row.get(1), row.get(2)));
            match out.last_mut() {
                Some((last, Ok(files))) if *last == dir => files.push(file),
                _ => out.push((dir, Ok(vec![file]))),
            }
        }
        Ok(out)
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
}
