//! Who proved to send a revision: the agent whose token uploaded its exact content through the
//! API (`PUT .../files/handoff`, whose `from_agent` must name that token's agent), and the bytes
//! of each of its artifacts: declared by the handoff's `sha256` (which receipt checks against
//! the bytes) or uploaded by that same token (`PUT .../inbox/{path}`) as the last write through
//! the API to that path before the handoff. A file written on the share proves nothing about
//! its writer, whatever its `from_agent` says, and neither do bytes another writer of the share
//! put in an artifact's place.
//!
//! Each upload is recorded, once the file is written into the workspace, as a line of
//! `data_dir/policy/uploads.jsonl` (owner-only, out of the agents' reach): the workspace, the
//! agent, and either the handoff's content digest (canonical JSON, as `meta.digest`) or an
//! inbox file's path and the sha256 of its bytes. There is one question, `revision_sender`
//! (asked through `app::review::sender`): a policy's `sender` at receipt, in shadow mode and
//! in `baton policy replay`, a grant's scope and its replay, the API detail's `sender`, and
//! who may not approve, claim or be assigned a revision as their own work. Lost lines (a crash before they reach the disk, a write that failed)
//! only make a sender unproven, never the reverse.

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Serialize, Deserialize)]
struct Line {
    workspace: String,
    /// A handoff's content digest, or an inbox file's sha256 when `path` is set.
    digest: String,
    agent: String,
    at: String,
    /// The workspace-relative path of an inbox file uploaded; absent for a handoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
}

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("policy").join("uploads.jsonl")
}

/// How many uploads of one path are remembered: an artifact whose last upload before its
/// handoff is older than these is unproven (never wrongly proven: the oldest are dropped).
const UPLOADS_KEPT_PER_PATH: usize = 64;

/// What has been read of one data_dir's file.
#[derive(Default)]
struct Known {
    /// Bytes read.
    offset: u64,
    /// Lines read: an upload's place in the order they were made.
    lines: u64,
    /// (workspace, content digest) -> (agent, place) of the last upload of that content.
    handoffs: HashMap<(String, String), (String, u64)>,
    /// (workspace, path) -> its last uploads, oldest first.
    files: HashMap<(String, String), VecDeque<FileUpload>>,
}

/// One upload of an inbox file.
struct FileUpload {
    place: u64,
    agent: String,
    sha256: String,
}

static READ: Mutex<Option<HashMap<PathBuf, Known>>> = Mutex::new(None);

/// Records that `agent`'s token uploaded a handoff with content `digest` into `workspace`.
/// Call it only once the file is written: a line for a write that failed would prove a
/// sender for content that someone else may then write on the share.
pub fn record(data_dir: &Path, workspace: &str, digest: &str, agent: &str) -> std::io::Result<()> {
    append(data_dir, workspace, digest, agent, None)
}

/// Records that `agent`'s token uploaded the inbox file `path` (workspace-relative, as
/// `inbox/...`) with bytes of `sha256` into `workspace`, once written.
pub fn record_file(
    data_dir: &Path,
    workspace: &str,
    path: &str,
    sha256: &str,
    agent: &str,
) -> std::io::Result<()> {
    append(data_dir, workspace, sha256, agent, Some(path))
}

fn append(
    data_dir: &Path,
    workspace: &str,
    digest: &str,
    agent: &str,
    path: Option<&str>,
) -> std::io::Result<()> {
    let file = file(data_dir);
    if let Some(dir) = file.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let line = Line {
        workspace: workspace.to_string(),
        digest: digest.to_string(),
        agent: agent.to_string(),
        at: crate::clock::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        path: path.map(str::to_string),
    };
    let mut text = serde_json::to_vec(&line)?;
    text.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&file)?;
    f.write_all(&text)
}

/// An artifact's `sha256` as its handoff declares it, which receipt checked against the bytes
/// at that artifact's path (and no other).
pub struct Declared<'a> {
    /// As the handoff writes it (`inbox/app.sh`, `./inbox/app.sh`).
    pub path: &'a str,
    pub sha256: &'a str,
}

/// One artifact file of a revision as receipt read it.
pub struct Received<'a> {
    /// Workspace-relative, as `inbox/...`.
    pub path: &'a str,
    /// Of the bytes read at receipt.
    pub sha256: &'a str,
}

/// The agent proven to have sent a whole revision into `workspace`: it uploaded the handoff
/// content `digest`, and each artifact file `received` holds either bytes whose sha256 the
/// handoff declares for that very path (`declared`, which receipt checked against them: a
/// sha256 declared for one artifact proves nothing of another's bytes) or the bytes that agent
/// uploaded to that path as the last upload there before the handoff. Anything else (an
/// artifact written on the share, swapped after its upload, uploaded by another token, or
/// uploaded after the handoff) leaves the revision without a proven sender.
pub fn revision_sender(
    data_dir: &Path,
    workspace: &str,
    digest: &str,
    declared: &[Declared<'_>],
    received: &[Received<'_>],
) -> Option<String> {
    with_known(data_dir, |k| {
        let (agent, place) = k
            .handoffs
            .get(&(workspace.to_string(), digest.to_string()))?;
        let proven = |r: &Received<'_>| {
            let declared_here = declared.iter().any(|d| {
                normal(d.path).as_deref() == Some(r.path) && d.sha256.eq_ignore_ascii_case(r.sha256)
            });
            if declared_here {
                return true;
            }
            let Some(uploads) = k.files.get(&(workspace.to_string(), r.path.to_string())) else {
                return false;
            };
            uploads
                .iter()
                .rev()
                .find(|u| u.place < *place)
                .is_some_and(|u| &u.agent == agent && u.sha256.eq_ignore_ascii_case(r.sha256))
        };
        received.iter().all(proven).then(|| agent.clone())
    })
}

/// A declared artifact path as receipt names the file it read (workspace-relative, `/`
/// between names, no `.`); `None` for one that could name it only through `..` or from the
/// root, which receipt refuses anyway. A path receipt reached through a symlink names another
/// file than the one declared, so its declared sha256 proves nothing (refused by default).
fn normal(path: &str) -> Option<String> {
    let mut names = Vec::new();
    for c in Path::new(path).components() {
        match c {
            std::path::Component::Normal(name) => names.push(name.to_str()?),
            std::path::Component::CurDir => {}
            _ => return None,
        }
    }
    Some(names.join("/"))
}

fn with_known<T>(data_dir: &Path, read: impl FnOnce(&Known) -> Option<T>) -> Option<T> {
    let path = file(data_dir);
    let mut guard = READ.lock().unwrap_or_else(|e| e.into_inner());
    let all = guard.get_or_insert_with(HashMap::new);
    let known = all.entry(path.clone()).or_default();
    catch_up(&path, known);
    read(known)
}

/// Reads the lines appended since the last read (whole lines only).
fn catch_up(path: &Path, known: &mut Known) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < known.offset {
        // Replaced or cut: read it again from the start.
        *known = Known::default();
    }
    if len == known.offset || f.seek(SeekFrom::Start(known.offset)).is_err() {
        return;
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return;
    }
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    for line in bytes[..whole].split(|b| *b == b'\n') {
        let Ok(l) = serde_json::from_slice::<Line>(line) else {
            continue;
        };
        known.lines += 1;
        let place = known.lines;
        match l.path {
            None => {
                known
                    .handoffs
                    .insert((l.workspace, l.digest), (l.agent, place));
            }
            Some(path) => {
                let uploads = known.files.entry((l.workspace, path)).or_default();
                if uploads.len() == UPLOADS_KEPT_PER_PATH {
                    uploads.pop_front();
                }
                uploads.push_back(FileUpload {
                    place,
                    agent: l.agent,
                    sha256: l.digest,
                });
            }
        }
    }
    known.offset += whole as u64;
}

#[cfg(test)]
mod tests {
    use super::{Declared, Received};

    #[test]
    fn an_upload_proves_its_sender_only_for_its_content_and_workspace() {
        let dir = tempfile::tempdir().unwrap();
        let sender =
            |ws: &str, digest: &str| super::revision_sender(dir.path(), ws, digest, &[], &[]);
        assert_eq!(sender("alpha", "d1"), None);
        super::record(dir.path(), "alpha", "d1", "release-bot").unwrap();
        assert_eq!(sender("alpha", "d1").as_deref(), Some("release-bot"));
        assert_eq!(sender("alpha", "d2"), None);
        assert_eq!(sender("beta", "d1"), None);
    }

    #[test]
    fn a_revision_is_proven_only_with_bytes_its_sender_declared_or_uploaded_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let got = |digest: &str, declared: &[&str], sha: &str| {
            let received = [Received {
                path: "inbox/app.sh",
                sha256: sha,
            }];
            let declared: Vec<Declared<'_>> = declared
                .iter()
                .map(|sha256| Declared {
                    path: "./inbox/app.sh",
                    sha256,
                })
                .collect();
            super::revision_sender(d, "alpha", digest, &declared, &received)
        };
        super::record_file(d, "alpha", "inbox/app.sh", "aa", "release-bot").unwrap();
        super::record(d, "alpha", "h1", "release-bot").unwrap();
        assert_eq!(got("h1", &[], "aa").as_deref(), Some("release-bot"));
        // Bytes swapped in on the share: neither uploaded nor declared.
        assert_eq!(got("h1", &[], "bb"), None);
        assert_eq!(got("h1", &["BB"], "bb").as_deref(), Some("release-bot"));
        // No artifacts: the handoff's upload is the whole revision.
        assert_eq!(
            super::revision_sender(d, "alpha", "h1", &[], &[]).as_deref(),
            Some("release-bot")
        );
        // Another token's upload to the path, or the sender's own after the handoff, is not
        // the sender's bytes for it.
        super::record_file(d, "alpha", "inbox/app.sh", "cc", "helper").unwrap();
        super::record(d, "alpha", "h2", "release-bot").unwrap();
        assert_eq!(got("h2", &[], "cc"), None);
        super::record_file(d, "alpha", "inbox/app.sh", "dd", "release-bot").unwrap();
        assert_eq!(got("h2", &[], "dd"), None);
        // An older upload of the sender's, put back in place of its last one, is not it.
        super::record(d, "alpha", "h3", "release-bot").unwrap();
        assert_eq!(got("h3", &[], "aa"), None);
        assert_eq!(got("h3", &[], "dd").as_deref(), Some("release-bot"));
        // A sha256 declared for another artifact's path proves nothing of this one's bytes.
        let elsewhere = [Declared {
            path: "inbox/other.sh",
            sha256: "bb",
        }];
        let received = [Received {
            path: "inbox/app.sh",
            sha256: "bb",
        }];
        assert_eq!(
            super::revision_sender(d, "alpha", "h1", &elsewhere, &received),
            None
        );
        // Unknown handoff content: nobody.
        assert_eq!(got("h4", &[], "dd"), None);
    }
}
