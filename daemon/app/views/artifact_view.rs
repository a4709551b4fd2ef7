//! The artifacts of a handoff as the reviewer's page lists them: each with its sha256 check
//! against what was received, whether it changed since the previous revision, and what kind
//! of file it is. Cheap by design, since the page lists up to 1,000 of them on every load:
//! file metadata only (each folder opened once), digests from the cache, and a file that
//! changed since receipt is hashed in the background, never on the request path.

use crate::app::model::Stamp;
use crate::app::review::artifacts::MAX_HASH_BYTES;
use crate::app::{App, Served};
use crate::auth::Actor;
use crate::contract::handoff::Artifact;
use crate::media::{self, MediaKind};
use crate::workspace::{Identity, ReadError};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An artifact's bytes now against the sha256 recorded when its revision was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Ok,
    /// The file changed since it was received.
    Mismatch,
    /// No regular file there any more (gone, or replaced by a symlink, folder or pipe).
    Missing,
    /// Not known yet: being hashed in the background, or never hashed (see the detail).
    Unchecked,
}

/// An artifact against the previous revision of the handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The previous revision did not have it.
    New,
    Unchanged,
    Changed,
    /// The previous revision's artifacts were not recorded (received by an older baton).
    Unknown,
}

/// One artifact of the current revision. Every string is the agent's or derived from it:
/// plain text, for the template to escape.
#[derive(Debug, Clone, Serialize)]
pub struct ArtifactView {
    /// As the handoff names it: the name to use in preview and download URLs.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Bytes as received (or now, if it was not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The sha256 recorded when the revision was received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub check: Check,
    /// Why the check says what it says, when it is not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_detail: Option<String>,
    /// Against the previous revision; absent for revision 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Change>,
    /// By name (and kept content); the preview judges by the bytes.
    pub kind: MediaKind,
    /// Whether `approved/` holds a copy to diff against (see `approved_path`).
    pub approved_copy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no handoff with key \"{0}\"")]
    NoHandoff(String),
    #[error("the handoff names no artifact \"{0}\"")]
    NotNamed(String),
    #[error("\"{0}\" is no longer in the workspace")]
    Missing(String),
    #[error("\"{0}\" is not served: it is now a symlink, folder or pipe, or lies behind one")]
    NotRegular(String),
    #[error("\"{path}\" is {size} bytes, over the {limit} bytes served here")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("\"{0}\" is not a PNG, JPEG, GIF or WebP image")]
    NotAnImage(String),
    #[error("cannot read \"{0}\": {1}")]
    Io(String, std::io::Error),
}

/// Where the promoted copy of an artifact lives (`contract::promoted::target`, the mapping
/// validation checks for collisions): for the promoter and the page alike.
pub fn approved_path(artifact: &str) -> String {
    crate::contract::promoted::target(artifact)
}

/// `path` without `.` and empty components (`./inbox//a` -> `inbox/a`); paths with `..` never
/// get this far (refused when the handoff was validated).
pub(in crate::app) fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// What the views need of a record, copied out under the workspace lock.
pub(in crate::app) struct Named {
    pub ws: Arc<Served>,
    pub revision: u32,
    pub artifacts: Vec<Artifact>,
    pub stamps: Vec<Stamp>,
    /// `stamps` by path (a handoff may have 1,000).
    by_path: HashMap<String, usize>,
    pub previous: Option<Vec<Stamp>>,
}

impl Named {
    /// The stamp of an artifact: by its path, else by where it resolves now (an artifact
    /// named through a symlink inside the workspace is stamped by its real path).
    pub fn stamp(&self, path: &str) -> Option<&Stamp> {
        if let Some(&i) = self.by_path.get(&normalize(path)) {
            return Some(&self.stamps[i]);
        }
        let real = crate::workspace::resolve(&self.ws.workspace.root, path).ok()?;
        let real = real.strip_prefix(&self.ws.workspace.root).ok()?.to_str()?;
        self.by_path.get(real).map(|&i| &self.stamps[i])
    }

    /// The file to open for an artifact (and its stamp): what was hashed at receipt, else
    /// the named path.
    pub fn file(&self, path: &str, stamp: Option<&Stamp>) -> PathBuf {
        let rel = stamp.map_or_else(|| normalize(path), |s| s.path.clone());
        self.ws.workspace.root.join(rel)
    }
}

impl App {
    /// The record of `key` with what its views need, if `actor` may see it.
    pub(in crate::app) fn named(&self, key: &str, actor: &Actor) -> Result<Named, ViewError> {
        let missing = || ViewError::NoHandoff(key.to_string());
        let ws = self
            .ws_of_key(key)
            .filter(|ws| ws.seen_by(actor))
            .ok_or_else(missing)?;
        let st = ws.lock();
        let rec = st.records.get(key).ok_or_else(missing)?;
        let (artifacts, stamps) = (rec.handoff().artifacts.clone(), rec.meta.artifacts.clone());
        let previous = rec.meta.previous_artifacts.clone();
        let revision = rec.meta.revision;
        drop(st);
        let by_path = stamps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.path.clone(), i))
            .collect();
        Ok(Named {
            ws,
            revision,
            artifacts,
            stamps,
            by_path,
            previous,
        })
    }

    /// The artifacts of `key`'s current revision, for the handoff page (see the module doc).
    pub fn artifacts(&self, key: &str, actor: &Actor) -> Result<Vec<ArtifactView>, ViewError> {
        let named = self.named(key, actor)?;
        let root = &named.ws.workspace.root;
        let stamps: Vec<Option<&Stamp>> = named
            .artifacts
            .iter()
            .map(|a| named.stamp(&a.path))
            .collect();
        // One batch of metadata reads: each artifact, then each approved copy.
        let mut files: Vec<PathBuf> = named
            .artifacts
            .iter()
            .zip(&stamps)
            .map(|(a, stamp)| named.file(&a.path, *stamp))
            .collect();
        files.extend(
            named
                .artifacts
                .iter()
                .map(|a| root.join(approved_path(&a.path))),
        );
        let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
        let found = named.ws.workspace.identities(&refs);
        let (now, approved) = found.split_at(named.artifacts.len());
        let previous: Option<HashMap<&str, &str>> = named.previous.as_ref().map(|p| {
            p.iter()
                .map(|s| (s.path.as_str(), s.sha256.as_str()))
                .collect()
        });
        let mut recheck = Vec::new();
        let mut views = Vec::with_capacity(named.artifacts.len());
        for (i, artifact) in named.artifacts.iter().enumerate() {
            let stamp = stamps[i];
            let (check, check_detail) = self.check(stamp, &now[i]);
            if let (Check::Unchecked, Some(_), Ok(Some(id))) = (check, stamp, &now[i]) {
                recheck.push((files[i].clone(), id.clone()));
            }
            let previous = match (&previous, stamp) {
                _ if named.revision == 1 => None,
                (None, _) | (_, None) => Some(Change::Unknown),
                (Some(prev), Some(s)) => Some(match prev.get(s.path.as_str()) {
                    None => Change::New,
                    Some(sha) if *sha == s.sha256 => Change::Unchanged,
                    Some(_) => Change::Changed,
                }),
            };
            let size = stamp.map(|s| s.identity.size).or_else(|| match &now[i] {
                Ok(Some(id)) => Some(id.size),
                _ => None,
            });
            views.push(ArtifactView {
                path: artifact.path.clone(),
                role: artifact.role.clone(),
                note: artifact.note.clone(),
                size,
                sha256: stamp.map(|s| s.sha256.clone()),
                check,
                check_detail,
                previous,
                kind: self.kind_of(&artifact.path, stamp),
                approved_copy: matches!(approved[i], Ok(Some(_))),
            });
        }
        self.recheck_in_background(&named.ws, recheck);
        Ok(views)
    }

    /// An artifact's check from its identity now, without reading it.
    fn check(
        &self,
        stamp: Option<&Stamp>,
        now: &Result<Option<Identity>, ReadError>,
    ) -> (Check, Option<String>) {
        let identity = match now {
            Ok(Some(identity)) => identity,
            Ok(None) => return (Check::Missing, Some("no file there any more".into())),
            Err(ReadError::NotRegular) => {
                let why = "replaced by a symlink, folder or pipe";
                return (Check::Missing, Some(why.into()));
            }
            Err(e) => return (Check::Missing, Some(format!("cannot be opened: {e}"))),
        };
        let Some(stamp) = stamp else {
            let why = "not hashed when it was received";
            return (Check::Unchecked, Some(why.into()));
        };
        if *identity == stamp.identity {
            return (Check::Ok, None);
        }
        match self.inner.common.hashes.get(identity) {
            Some(digest) if digest == stamp.sha256 => (Check::Ok, None),
            Some(digest) => (
                Check::Mismatch,
                Some(format!(
                    "changed since it was received: sha256 {digest} now"
                )),
            ),
            None => (
                Check::Unchecked,
                Some("written since it was received; being hashed, reload to see".into()),
            ),
        }
    }

    /// The kind by name; a name that says nothing is text when the head of its snapshot
    /// looks like text (read only for such names).
    fn kind_of(&self, path: &str, stamp: Option<&Stamp>) -> MediaKind {
        match media::kind_by_name(path) {
            MediaKind::Unknown if stamp.is_some_and(|s| self.looks_like_text(s)) => MediaKind::Text,
            kind => kind,
        }
    }

    fn looks_like_text(&self, stamp: &Stamp) -> bool {
        const HEAD: u64 = 1024;
        let size = stamp.identity.size;
        let blobs = &self.inner.common.blobs;
        blobs
            .head(&stamp.sha256, size, HEAD)
            .is_some_and(|head| media::sniff(&head, size <= HEAD) != media::Sniffed::Binary)
    }

    /// Hashes files that changed since receipt on a thread of their own (one per workspace
    /// at a time), so the next look at the page can say ok or mismatch.
    fn recheck_in_background(&self, ws: &Served, files: Vec<(PathBuf, Identity)>) {
        if files.is_empty() || !self.inner.common.hashes.start_check(&ws.workspace.root) {
            return;
        }
        let (app, workspace) = (self.clone(), ws.workspace.clone());
        let spawned = std::thread::Builder::new()
            .name("baton-recheck".into())
            .spawn(move || {
                let mut budget = MAX_HASH_BYTES;
                for (file, identity) in files {
                    if identity.size > budget {
                        continue;
                    }
                    let known = |id: &Identity| app.inner.common.hashes.get(id);
                    if let Ok((id, digest)) = workspace.sha256_known(&file, &known) {
                        budget = budget.saturating_sub(id.size);
                        app.inner.common.hashes.put(id, digest);
                    }
                }
                app.inner.common.hashes.done_check(&workspace.root);
            });
        if spawned.is_err() {
            // No thread to be had: they stay unchecked until the next look.
            self.inner.common.hashes.done_check(&ws.workspace.root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approved_copies_mirror_the_inbox() {
        assert_eq!(approved_path("inbox/notes.md"), "approved/notes.md");
        assert_eq!(approved_path("./inbox//src/a.rs"), "approved/src/a.rs");
        assert_eq!(approved_path("reports/x.txt"), "approved/reports/x.txt");
        assert_eq!(approved_path("inboxes/x"), "approved/inboxes/x");
    }
}
