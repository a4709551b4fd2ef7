//! The spend tickets of handoff uploads (see `proof`): one empty file each in
//! `data_dir/policy/unspent/`, made when the upload is recorded and removed, durably, at its
//! file's first receipt, before anything is proven from it.

use crate::host::Identity;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The folder of the unspent handoff uploads' tickets: one empty file each, named for the
/// workspace and the file written (`ticket`). A handoff upload proves a sender only while its
/// ticket is there, and receipt removes it (durably) before it relies on the upload: the spend
/// is on the disk before anything is proven, so neither a `received` line that failed to be
/// written nor a restart can make the upload prove again. A ticket that cannot be made, or a
/// line written by a version without tickets, leaves the upload proving nothing.
fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join("policy").join("unspent")
}

pub(super) fn ticket(data_dir: &Path, workspace: &str, written: &Identity) -> PathBuf {
    let mut text = workspace.as_bytes().to_vec();
    text.push(0);
    text.extend(serde_json::to_vec(written).unwrap_or_default());
    folder(data_dir).join(crate::contract::validate::sha256_hex(&text))
}

pub(super) fn issue(data_dir: &Path, workspace: &str, written: &Identity) -> std::io::Result<()> {
    let dir = folder(data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(ticket(data_dir, workspace, written))?;
    // Not synced: a ticket lost to a crash only leaves its upload unproven.
    Ok(())
}

/// Spends the ticket at `path`: gone from the disk, durably, or an error. One already gone
/// (spent, or never made) is an error too: the upload proves nothing.
pub(super) fn spend(path: &Path) -> std::io::Result<()> {
    std::fs::remove_file(path)?;
    sync_folder(path)
}

/// Syncs the tickets' folder, so a removal is durable (with std: `workspace`, whose syncs are
/// counted, is a layer this module may not import).
fn sync_folder(path: &Path) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(path);
    std::fs::File::open(dir)?.sync_all()
}

/// Tickets whose spend failed (the removal or its sync), tried again at every later question
/// until done; until then the in-memory spend (`Known::bound`) refuses the upload.
pub(super) fn retry(pending: &mut Vec<PathBuf>) {
    pending.retain(|path| {
        let removed = match std::fs::remove_file(path) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        !(removed && sync_folder(path).is_ok())
    });
}
