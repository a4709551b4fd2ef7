//! `baton backup -o FILE`: data_dir as a tar archive, taken while the daemon runs.
//!
//! What it gives: every folder of data_dir is copied as it was at one moment, the moment no
//! file in it changed while it was read (its listing, inodes, sizes and times are read before
//! and after the copy, and the copy is taken again until they agree). The store changes a
//! record only by renames into one folder, committed by an intent file there (see
//! `baton::store`), so each record in the archive is what a crash at that moment would have
//! left, and the restored daemon finishes or drops the change at start, as after a crash.
//! Folders are copied one after another, records (`workspaces/`) first and the audit anchors
//! after them, so an anchor is never behind the record it covers (a later anchor is what the
//! daemon meets after any restart). The search index is left out: it is a cache, rebuilt
//! from the workspaces when missing.

use anyhow::Context;
use baton::config::Config;
use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The archive's first entry: what it is, from where, when.
pub const MARKER: &str = "baton-backup.json";
/// data_dir's folders left out: caches the daemon rebuilds.
const LEFT_OUT: [&str; 1] = ["search"];
/// Tries at a folder that keeps changing before giving up (each ~20 ms apart).
const TRIES: u32 = 200;

pub fn backup(output: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    refuse_cluster(&config, "backup")?;
    let data_dir = &config.data_dir;
    baton::private::readable(data_dir).map_err(anyhow::Error::msg)?;
    if !data_dir.is_dir() {
        anyhow::bail!(
            "{}: data_dir {} does not exist: nothing to back up (is this the daemon's configuration?)",
            config.source_name,
            data_dir.display()
        );
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .with_context(|| {
            format!(
                "{}: cannot create the archive (it must not exist yet)",
                output.display()
            )
        })?;
    let written = write_archive(file, &config).inspect_err(|_| {
        let _ = std::fs::remove_file(output);
    })?;
    out!(
        "baton: backed up {} ({} files, {} bytes) to {}",
        data_dir.display(),
        written.files,
        written.bytes,
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// With `[cluster]` the records and anchors are rows in PostgreSQL, not files: an archive of
/// data_dir would look like a backup and restore none of them.
pub fn refuse_cluster(config: &Config, command: &str) -> anyhow::Result<()> {
    if config.cluster.is_some() {
        anyhow::bail!(
            "{}: [cluster]: the records and audit anchors are in PostgreSQL, which `baton {command}` does not copy; \
             back the database up with pg_dump (see cluster.md), and data_dir (keys, spool) as files",
            config.source_name
        );
    }
    Ok(())
}

#[derive(Default)]
struct Written {
    files: usize,
    bytes: u64,
}

fn write_archive(file: File, config: &Config) -> anyhow::Result<Written> {
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let marker = serde_json::json!({
        "baton_backup": 1,
        "version": env!("CARGO_PKG_VERSION"),
        "made_at": baton::clock::now_rfc3339(),
        "data_dir": config.data_dir,
        "config": config.source_name,
    });
    append(
        &mut tar,
        Path::new(MARKER),
        &serde_json::to_vec_pretty(&marker)?,
        0o600,
    )?;
    let mut written = Written::default();
    for dir in folders(&config.data_dir)? {
        let rel = dir.strip_prefix(&config.data_dir)?;
        if !rel.as_os_str().is_empty() {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o700);
            header.set_size(0);
            tar.append_data(&mut header, rel, std::io::empty())?;
        }
        for (name, bytes) in snapshot(&dir)? {
            written.files += 1;
            written.bytes += bytes.len() as u64;
            append(&mut tar, &rel.join(name), &bytes, 0o600)?;
        }
    }
    let mut out = tar.into_inner()?;
    out.flush()?;
    out.get_ref().sync_all()?;
    Ok(written)
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    bytes: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(bytes.len() as u64);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    tar.append_data(&mut header, path, bytes)
}

/// data_dir and its folders, records first, then anchors, then the rest; caches left out.
fn folders(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut all = vec![data_dir.to_path_buf()];
    let walk = walkdir::WalkDir::new(data_dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() != 1 || !LEFT_OUT.iter().any(|n| e.file_name() == *n));
    for entry in walk {
        let entry = entry.with_context(|| format!("cannot list {}", data_dir.display()))?;
        if entry.file_type().is_dir() {
            all.push(entry.into_path());
        }
    }
    let rank = |p: &PathBuf| match p.strip_prefix(data_dir).ok().and_then(|r| r.iter().next()) {
        Some(top) if top == "workspaces" => 0,
        Some(top) if top == "anchors" => 1,
        _ => 2,
    };
    all.sort_by_key(|p| (rank(p), p.clone()));
    Ok(all)
}

/// What identifies a file's content without reading it: a rename brings a new inode, a write
/// in place a new size or change time.
type Stamp = (u64, u64, i64, i64);

fn stamp(meta: &Metadata) -> Stamp {
    (
        meta.ino(),
        meta.size(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
        meta.ctime_nsec() + meta.ctime() * 1_000_000_000,
    )
}

/// The regular files directly in `dir`, by name: the folder's listing and every file's stamp
/// before the copy.
fn listing(dir: &Path) -> std::io::Result<BTreeMap<String, Stamp>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_file() {
            if let Ok(name) = entry.file_name().into_string() {
                files.insert(name, stamp(&meta));
            }
        }
    }
    Ok(files)
}

/// The files of `dir` as they were at one moment: copied until nothing changed during a copy.
fn snapshot(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    for _ in 0..TRIES {
        let before = listing(dir)?;
        let mut files = Vec::with_capacity(before.len());
        let mut moved = false;
        for name in before.keys() {
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => files.push((name.clone(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    moved = true;
                    break;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot read {}", dir.join(name).display()))
                }
            }
        }
        if !moved && listing(dir)? == before {
            return Ok(files);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!(
        "{}: kept changing while it was copied ({TRIES} tries); run the backup again, or stop the daemon for it",
        dir.display()
    )
}
