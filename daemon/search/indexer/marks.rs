//! What changed in a workspace, as the indexer gathers it between reconciles: artifact
//! paths, handoff records, or the whole workspace.

use crate::events::{Event, EventType};
use crate::workspace::{APPROVED_DIR, INBOX_DIR};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

/// More changed paths or records than this in one workspace within a settle window: the
/// workspace is reconciled whole (one listing instead of many walks).
const MAX_PATHS: usize = 256;

/// A workspace with changes waiting: since when, and what changed.
pub(super) struct Mark {
    pub(super) at: Instant,
    /// What changed; `None`: the whole workspace may have.
    pub(super) part: Option<Part>,
}

/// The parts of a workspace that changed.
#[derive(Default)]
pub(super) struct Part {
    /// Artifact paths, relative to the root.
    pub(super) paths: HashSet<String>,
    /// Keys of records.
    pub(super) records: HashSet<String>,
}

/// One change of a workspace.
pub(super) enum Change {
    /// At an artifact path, relative to the root.
    Artifact(String),
    /// Of the record of a handoff.
    Record(String),
    Whole,
}

impl Change {
    /// What an event says changed: a handoff's events change its record only; the others
    /// (checkpoints, approved work, the workspace's own) are taken as changing anything.
    pub(super) fn of(event: &Event) -> Change {
        use EventType::*;
        let of_record = matches!(
            event.kind,
            HandoffReceived
                | HandoffRevised
                | HandoffClaimed
                | HandoffUnclaimed
                | HandoffDecided
                | HandoffPartiallyApproved
                | HandoffSignedOff
                | HandoffEscalated
        );
        match &event.key {
            Some(key) if of_record => Change::Record(key.clone()),
            _ => Change::Whole,
        }
    }

    /// What a change the watch saw at `path`, in the workspace whose folder is `root`,
    /// changes for search. `None`: nothing (a file of the workspace that is no artifact, such
    /// as `handoff.json` or the `decision.json` written back: the records they become are
    /// the store's, whose changes come as events, as do checkpoints').
    pub(super) fn at(root: &Path, path: &Path) -> Option<Change> {
        let Ok(rel) = path.strip_prefix(root) else {
            return Some(Change::Whole);
        };
        // The workspace's folder itself (made again, removed).
        let Some(first) = rel.components().next() else {
            return Some(Change::Whole);
        };
        if first.as_os_str() != INBOX_DIR && first.as_os_str() != APPROVED_DIR {
            return None;
        }
        Some(artifact_path(root, path).map_or(Change::Whole, Change::Artifact))
    }
}

/// Marks `name` as changed.
pub(super) fn mark(dirty: &mut HashMap<String, Mark>, name: &str, change: Change) {
    // The first change starts the settle window; later ones within it join the same reconcile.
    let m = dirty.entry(name.to_string()).or_insert_with(|| Mark {
        at: Instant::now(),
        part: Some(Part::default()),
    });
    let Some(part) = &mut m.part else { return };
    let (set, one) = match change {
        Change::Artifact(path) => (&mut part.paths, path),
        Change::Record(key) => (&mut part.records, key),
        Change::Whole => {
            m.part = None;
            return;
        }
    };
    match set.len() < MAX_PATHS {
        true => {
            set.insert(one);
        }
        false => m.part = None,
    }
}

/// `path` relative to `root` when it lies below `inbox/` or `approved/` (not one of those
/// folders itself, whose appearance or removal the whole reconcile handles) and is UTF-8.
pub(super) fn artifact_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = rel.components();
    let first = parts.next()?.as_os_str();
    if first != INBOX_DIR && first != APPROVED_DIR {
        return None;
    }
    // The folder itself has no next part.
    parts.next()?;
    let rel = rel.to_str()?;
    // Only plain names: a `..` or `.` would make the path mean another one.
    rel.split('/')
        .all(|p| !p.is_empty() && p != "." && p != "..")
        .then(|| rel.to_string())
}

/// Whether the '/'-separated `path` is `rel` or lies under it.
pub(super) fn under(path: &str, rel: &str) -> bool {
    path.strip_prefix(rel)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}
