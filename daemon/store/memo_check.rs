//! The memos of a workspace's store checked from outside the daemon (`baton doctor`,
//! `baton repair`): each one damaged (see `memo`), with what its damage costs and what
//! becomes of it. Memos carry no committed copy to prove bytes against (unlike record files,
//! see `repair`), so nothing here rewrites them: the daemon rebuilds each one it can when it
//! next reads it (`app::review::memo_damage` tells it then), and the rest wait for a person.

use super::memo::{self, Memo};
use std::io;
use std::path::Path;

/// A memo of the store, and what its damage means. The file names are those the daemon's
/// readers use (`app::review::approved`, `ownership`, `locks`, `store::identity`, the caches
/// of `app::runtime::load` and `published_copies`).
pub struct Kind {
    pub file: &'static str,
    /// What is not known while it is damaged.
    pub costs: &'static str,
    /// What the daemon does about it, and what is left to a person.
    pub remedy: &'static str,
    /// A person must act (nothing rebuilds it).
    pub needs_a_person: bool,
}

pub const KINDS: &[Kind] = &[
    Kind {
        file: "approved.json",
        costs: "which files in approved/ are approved work is not known from it",
        remedy:
            "the daemon rebuilds it from the store's records of approved handoffs and saves it \
                 at its next check of approved/ (at start, or at once if it runs); approved/ stays \
                 guarded meanwhile. Nothing to do (`baton repair` first if a record is damaged too)",
        needs_a_person: false,
    },
    Kind {
        file: "owner.json",
        costs: "the workspace's owner is unknown: only an admin can take or hand on the workspace",
        remedy:
            "nothing rebuilds it: an admin sets the owner (`POST /api/v1/workspaces/{ws}/owner` \
                 or the workspace page), which writes it again; the audit log's last \
                 workspace.owner_changed says who it was",
        needs_a_person: true,
    },
    Kind {
        file: "locks-seen.json",
        costs: "the fencing-token mark of the lock table is not known from it",
        remedy: "the daemon rebuilds the mark from the audit log's lock.acquired events when it \
                 next reads the lock table (at start) and logs the table's journal again; if the \
                 log cannot be read, the table is set aside and locks start afresh. Nothing to do \
                 (`baton audit verify` if the log is damaged too)",
        needs_a_person: false,
    },
    Kind {
        file: "identity.json",
        costs: "a folder claiming the workspace's id is not taken for it; a rename made while it \
                is damaged is served as a new workspace",
        remedy: "the daemon writes it again from the folder it serves when it next loads the \
                 workspace (at start). Nothing to do",
        needs_a_person: false,
    },
    Kind {
        file: "checkpoints.json",
        costs: "a cache (a crash can tear it): the checkpoints already announced are not known",
        remedy: "the daemon rebuilds it at its next scan, announcing the checkpoints once more \
                 (logged twice, never lost). Nothing to do",
        needs_a_person: false,
    },
    Kind {
        file: "published-stamps.json",
        costs: "a cache (a crash can tear it): the published copies' fingerprints are not known",
        remedy: "the daemon rebuilds it at its next start by reading every published copy once. \
                 Nothing to do",
        needs_a_person: false,
    },
];

/// A damaged memo found in a store folder.
pub struct Found {
    pub kind: &'static Kind,
    pub why: String,
}

/// The damaged memos of the store folder `dir`, in `KINDS` order. An absent memo is not
/// damaged (nothing to keep yet); a symlink in its place is, and is not followed.
pub fn check(dir: &Path) -> Vec<Found> {
    KINDS
        .iter()
        .filter_map(
            |kind| match memo::parse::<serde_json::Value>(read(&dir.join(kind.file))) {
                Memo::Damaged(why) => Some(Found { kind, why }),
                Memo::Absent | Memo::Sound(_) => None,
            },
        )
        .collect()
}

fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(m) if !m.is_file() => {
            return Err(io::Error::other("not a regular file (a symlink, a folder)"))
        }
        Ok(_) => {}
    }
    std::fs::read(path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_memo_is_found_and_a_sound_or_absent_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("owner.json"), memo::seal(b"{\"a\":1}")).unwrap();
        assert!(check(dir.path()).is_empty());
        let mut cut = memo::seal(b"{\"owner\":\"ann\"}");
        cut.truncate(cut.len() - 3);
        std::fs::write(dir.path().join("owner.json"), cut).unwrap();
        std::fs::write(dir.path().join("checkpoints.json"), b"").unwrap();
        let found: Vec<_> = check(dir.path()).iter().map(|f| f.kind.file).collect();
        assert_eq!(found, ["owner.json", "checkpoints.json"]);
    }
}
