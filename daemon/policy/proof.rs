//! Who proved to send a revision: the agent whose token uploaded its exact content through the
//! API (`PUT .../files/handoff`, whose `from_agent` must name that token's agent), and the bytes
//! of each of its artifacts: declared by the handoff's `sha256` for that artifact's path (which
//! receipt checks against the bytes there) or uploaded by that same token (`PUT
//! .../inbox/{path}`) as the last write through the API to that path before the handoff. A file
//! written on the share proves nothing about its writer, whatever its `from_agent` says, and
//! neither do bytes another writer of the share put in an artifact's place.
//!
//! What is proven is a submission, not content: any writer of the share can write again bytes
//! an agent once uploaded. So an upload proves only the very file the daemon wrote, and only
//! once. Each upload is recorded, once the file is written into the workspace, as a line of
//! `data_dir/policy/uploads.jsonl` (owner-only, out of the agents' reach): the workspace, the
//! agent, the handoff's content digest (canonical JSON, as `meta.digest`) or an inbox file's
//! path and sha256, and the identity of the file written (device, inode, size, mtime, ctime:
//! any write or rename changes the ctime, which no one can set back). At receipt (`bind`) the
//! file read (handoff.json and each artifact, as `fstat` of the descriptor read, at the path
//! the handoff names, not through a link) must be that very file, unchanged, and a handoff
//! upload proves one revision only: the first received from it, which spends it on the disk
//! (its ticket, see `tickets`, removed) before anything is proven from it. What receipt proved is
//! recorded as a `received` line (workspace, record, key, revision, digest, artifacts, agent),
//! and every later question about that revision reads it (`revision_sender`):
//! a policy's `sender` at receipt, in shadow mode and in `baton policy replay`, a grant's
//! scope and its replay, the API detail's `sender`, and who may not approve, claim or be
//! assigned a revision as their own work. Lost lines (a crash before they reach the disk, a
//! write that failed, another node's file in a cluster) only make a sender unproven, never the
//! reverse.

use crate::host::Identity;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
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
    /// The file the upload wrote, as found right after it (for a `received` line: the
    /// handoff upload's). An upload line without it proves nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<Identity>,
    /// Set on a receipt's line: the revision the handoff upload `file` was received as, with
    /// `digest` its content and `agent` its proven sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    received: Option<Revision>,
    /// Set on a receipt's line: the revision's artifacts as read (`fingerprint`), so that the
    /// line proves only a revision of these very bytes (not one of the same key, revision and
    /// handoff text with other artifact bytes, in a workspace made again under that name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifacts: Option<String>,
    /// Set on a receipt's line: the record it was received into (`Receipt::record`), so that
    /// the line proves nothing of the same revision received again into another record (a
    /// workspace made again under its name, its store new, the same files written back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    /// Set at a receipt: the inbox paths its handoff names that held an upload no earlier
    /// receipt had named (`unbound`), on a `received` line or, for a revision with no proven
    /// sender, on a line of its own (without `file`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    named: Vec<String>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Revision {
    key: String,
    revision: u32,
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
    /// (workspace, the file written) -> that handoff upload.
    handoffs: HashMap<(String, Identity), HandoffUpload>,
    /// (workspace, path) -> its last uploads, oldest first.
    files: HashMap<(String, String), VecDeque<FileUpload>>,
    /// (workspace, a handoff upload's file) -> the revision it was first received as, and the
    /// record it was received into (`Receipt::record`; none on a line that predates it).
    bound: HashMap<(String, Identity), (Revision, Option<String>)>,
    /// (workspace, key, revision) -> what its receipt proved.
    received: HashMap<(String, String, u32), Vec<Proven>>,
    /// Tickets whose spend is still to be made durable (`tickets::retry`).
    pending: Vec<PathBuf>,
    /// agent -> the (workspace, path) whose last upload is that agent's and that no handoff
    /// received since has named: what `limits.max_unbound_uploads` counts (`unbound`).
    unbound: HashMap<String, HashSet<(String, String)>>,
}

/// What a receipt proved of a revision.
struct Proven {
    digest: String,
    agent: String,
    /// Its artifacts' `fingerprint`; none on a line that predates it, which proves nothing.
    artifacts: Option<String>,
    /// The record it was received into; none on a line that predates it, which proves nothing.
    record: Option<String>,
}

/// The artifacts of a revision, as (path, sha256) pairs in any order, in one digest.
pub fn fingerprint<'a>(artifacts: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, String)> = artifacts
        .into_iter()
        .map(|(path, sha256)| (path, sha256.to_ascii_lowercase()))
        .collect();
    pairs.sort();
    let mut text = String::new();
    for (path, sha256) in pairs {
        text.push_str(path);
        text.push('\0');
        text.push_str(&sha256);
        text.push('\n');
    }
    crate::contract::validate::sha256_hex(text.as_bytes())
}

/// One upload of a handoff.
struct HandoffUpload {
    place: u64,
    agent: String,
    digest: String,
}

/// One upload of an inbox file.
struct FileUpload {
    place: u64,
    agent: String,
    sha256: String,
    file: Identity,
}

static READ: Mutex<Option<HashMap<PathBuf, Known>>> = Mutex::new(None);

/// Records that `agent`'s token uploaded a handoff with content `digest` into `workspace`,
/// writing the file `written`. Call it only once the file is written, with the identity of
/// the file found there holding those bytes: a line for a write that failed would prove a
/// sender for content that someone else may then write on the share.
pub fn record(
    data_dir: &Path,
    workspace: &str,
    digest: &str,
    agent: &str,
    written: &Identity,
) -> std::io::Result<()> {
    append(data_dir, upload(workspace, digest, agent, None, written))?;
    super::tickets::issue(data_dir, workspace, written)
}

/// Records that `agent`'s token uploaded the inbox file `path` (workspace-relative, as
/// `inbox/...`) with bytes of `sha256` into `workspace`, writing the file `written`.
pub fn record_file(
    data_dir: &Path,
    workspace: &str,
    path: &str,
    sha256: &str,
    agent: &str,
    written: &Identity,
) -> std::io::Result<()> {
    append(
        data_dir,
        upload(workspace, sha256, agent, Some(path), written),
    )
}

/// An upload's line: a handoff's (`path` none, `digest` its content) or an inbox file's.
fn upload(
    workspace: &str,
    digest: &str,
    agent: &str,
    path: Option<&str>,
    written: &Identity,
) -> Line {
    Line {
        workspace: workspace.to_string(),
        digest: digest.to_string(),
        agent: agent.to_string(),
        at: now(),
        path: path.map(str::to_string),
        file: Some(written.clone()),
        received: None,
        artifacts: None,
        record: None,
        named: Vec::new(),
    }
}

fn now() -> String {
    crate::clock::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn append(data_dir: &Path, line: Line) -> std::io::Result<()> {
    let file = file(data_dir);
    if let Some(dir) = file.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut text = serde_json::to_vec(&line)?;
    text.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&file)?;
    // A line torn by a crash would swallow the next one appended after it (two lines read
    // as one that parses as neither): it is ended first, so only the torn one is lost.
    let len = f.metadata()?.len();
    let mut last = [b'\n'];
    if len > 0 {
        std::os::unix::fs::FileExt::read_exact_at(&f, &mut last, len - 1)?;
    }
    if last[0] != b'\n' {
        text.insert(0, b'\n');
    }
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
    /// Of the file those bytes were read from (`fstat` of its descriptor).
    pub file: &'a Identity,
}

/// A revision as receipt read it, once it is durable.
pub struct Receipt<'a> {
    pub workspace: &'a str,
    /// The record it was received into, told from any other record of the same key (the time
    /// its first revision was received, kept in the record): what a later question names.
    pub record: &'a str,
    pub key: &'a str,
    pub revision: u32,
    /// Its content digest (canonical JSON, as `meta.digest`).
    pub digest: &'a str,
    /// The handoff file its bytes were read from (`fstat` of its descriptor); `None` when
    /// unknown, which proves nobody.
    pub handoff_file: Option<&'a Identity>,
    pub declared: &'a [Declared<'a>],
    /// Every artifact's path as the handoff writes it.
    pub named: &'a [&'a str],
    pub received: &'a [Received<'a>],
}

/// At receipt: the agent proven to have sent the revision whole, recorded as what every later
/// question about that revision answers (`revision_sender`). Proven when the handoff file read
/// is, unchanged, the one an agent's upload of that content wrote, no other revision was
/// received from that upload, and each artifact file read holds either bytes whose sha256 the
/// handoff declares for that very path (a sha256 declared for one artifact proves nothing of
/// another's bytes) or is, unchanged, the file that agent uploaded to that path as the last
/// upload there before the handoff. Anything else (a handoff or artifact written on the share,
/// written again after its upload, swapped after it, uploaded by another token, or uploaded
/// after the handoff) leaves the revision without a proven sender; so does a line that cannot
/// be written.
pub fn bind(data_dir: &Path, r: &Receipt<'_>) -> Option<String> {
    with_known(data_dir, |k| {
        // The uploads this receipt binds no longer count against their agent's limit, proven
        // sender or not: recorded on its line, or on one of their own.
        let mut named: Vec<String> = r
            .named
            .iter()
            .filter_map(|p| normal(p))
            .filter(|p| is_unbound(k, r.workspace, p))
            .collect();
        let proven = bind_known(data_dir, k, r, &mut named);
        if !named.is_empty() {
            let line = Line {
                workspace: r.workspace.to_string(),
                digest: r.digest.to_string(),
                agent: String::new(),
                at: now(),
                path: None,
                file: None,
                received: None,
                artifacts: None,
                record: None,
                named,
            };
            if let Err(e) = append(data_dir, line) {
                tracing::warn!(workspace = %r.workspace, key = %r.key, error = %e,
                    "cannot record the uploads a receipt named; they still count against their agent's limits.max_unbound_uploads");
            }
        }
        proven
    })
}

/// Whether the last upload to `path` in `workspace` is still unbound.
fn is_unbound(k: &Known, workspace: &str, path: &str) -> bool {
    let at = (workspace.to_string(), path.to_string());
    k.files
        .get(&at)
        .and_then(|u| u.back())
        .is_some_and(|u| k.unbound.get(&u.agent).is_some_and(|set| set.contains(&at)))
}

/// Binds `named` (taken when written on the `received` line).
fn release(k: &mut Known, workspace: &str, path: &str) {
    let at = (workspace.to_string(), path.to_string());
    let agent = k
        .files
        .get(&at)
        .and_then(|u| u.back())
        .map(|u| u.agent.clone());
    if let Some(set) = agent.and_then(|a| k.unbound.get_mut(&a)) {
        set.remove(&at);
    }
}

/// How many inbox paths `agent` holds unbound uploads at (the last upload there its own, no
/// received handoff naming it since), and whether `path` (as `inbox/...`) of `workspace` is
/// one of them: an upload there replaces one and adds none.
pub fn unbound(data_dir: &Path, agent: &str, workspace: &str, path: &str) -> (usize, bool) {
    with_known(data_dir, |k| {
        let set = k.unbound.get(agent)?;
        Some((
            set.len(),
            set.contains(&(workspace.to_string(), path.to_string())),
        ))
    })
    .unwrap_or((0, false))
}

fn bind_known(
    data_dir: &Path,
    k: &mut Known,
    r: &Receipt<'_>,
    named: &mut Vec<String>,
) -> Option<String> {
    let handoff_file = r.handoff_file?;
    let at = (r.workspace.to_string(), handoff_file.clone());
    if let std::collections::hash_map::Entry::Vacant(first) = k.bound.entry(at) {
        // The first receipt of an upload's file spends it, on the disk, before anything
        // is proven from it, and whether or not anything is: the same file read again as
        // another revision (after a restart too) is not a new submission.
        let path = super::tickets::ticket(data_dir, r.workspace, handoff_file);
        match super::tickets::spend(&path) {
            Ok(()) => {
                first.insert(received_as(r));
            }
            // No upload wrote this file, or one already spent it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(workspace = %r.workspace, key = %r.key, revision = r.revision, error = %e,
                        "cannot spend the handoff upload of a revision: it has no proven sender, and the upload proves nothing more");
                first.insert(received_as(r));
                k.pending.push(path);
                return None;
            }
        }
    }
    let proven = prove(k, r)?;
    let line = Line {
        workspace: r.workspace.to_string(),
        digest: r.digest.to_string(),
        agent: proven.clone(),
        at: now(),
        path: None,
        file: r.handoff_file.cloned(),
        received: Some(Revision {
            key: r.key.to_string(),
            revision: r.revision,
        }),
        artifacts: Some(fingerprint(r.received.iter().map(|a| (a.path, a.sha256)))),
        record: Some(r.record.to_string()),
        named: std::mem::take(named),
    };
    match append(data_dir, line) {
        Ok(()) => Some(proven),
        Err(e) => {
            // The upload is spent all the same (its ticket is gone): once the line can be
            // written again, or after a restart, the same file read as another revision
            // does not take the proof this one lost.
            tracing::warn!(workspace = %r.workspace, key = %r.key, revision = r.revision, agent = %proven, error = %e,
                    "cannot record the proven sender of a revision; it has none");
            None
        }
    }
}

/// What a handoff upload is bound to once received: the revision, in its record.
fn received_as(r: &Receipt<'_>) -> (Revision, Option<String>) {
    let revision = Revision {
        key: r.key.to_string(),
        revision: r.revision,
    };
    (revision, Some(r.record.to_string()))
}

fn prove(k: &Known, r: &Receipt<'_>) -> Option<String> {
    let ws = r.workspace.to_string();
    let handoff_file = r.handoff_file?;
    let at = (ws.clone(), handoff_file.clone());
    let upload = k.handoffs.get(&at)?;
    if upload.digest != r.digest {
        return None;
    }
    if k.bound
        .get(&at)
        .is_some_and(|first| *first != received_as(r))
    {
        // Received once already: the same file read again (after a shadowing handoff.yaml
        // was removed, say, or into a record made anew by `baton repair --afresh`) is not a
        // new submission.
        return None;
    }
    // Each file read is the one at the path the handoff names: one reached through a link
    // (`inbox/deploy.sh` leading to `inbox/scratch/danger.sh`) is another file than the one
    // the handoff stands for, whoever uploaded it.
    let mut named: Vec<Option<String>> = r.named.iter().map(|p| normal(p)).collect();
    let mut read: Vec<Option<String>> = r
        .received
        .iter()
        .map(|a| Some(a.path.to_string()))
        .collect();
    named.sort();
    read.sort();
    if named != read || named.contains(&None) {
        return None;
    }
    let proven = |a: &Received<'_>| {
        let declared_here = r.declared.iter().any(|d| {
            normal(d.path).as_deref() == Some(a.path) && d.sha256.eq_ignore_ascii_case(a.sha256)
        });
        if declared_here {
            return true;
        }
        let Some(uploads) = k.files.get(&(ws.clone(), a.path.to_string())) else {
            return false;
        };
        uploads
            .iter()
            .rev()
            .find(|u| u.place < upload.place)
            .is_some_and(|u| {
                u.agent == upload.agent
                    && u.sha256.eq_ignore_ascii_case(a.sha256)
                    && u.file == *a.file
            })
    };
    r.received.iter().all(proven).then(|| upload.agent.clone())
}

/// The agent proven, at its receipt (`bind`), to have sent revision `revision` of `key` in
/// `workspace`, into the record `record` (`Receipt::record`), with content `digest` and
/// artifacts of `fingerprint` (as read at receipt); `None` for any revision receipt did not
/// prove (or whose line is lost).
pub fn revision_sender(
    data_dir: &Path,
    workspace: &str,
    record: &str,
    key: &str,
    revision: u32,
    digest: &str,
    artifacts: &str,
) -> Option<String> {
    with_known(data_dir, |k| {
        let at = (workspace.to_string(), key.to_string(), revision);
        let bindings = k.received.get(&at)?;
        let mut agents = bindings
            .iter()
            .filter(|p| {
                p.digest == digest
                    && p.artifacts.as_deref() == Some(artifacts)
                    && p.record.as_deref() == Some(record)
            })
            .map(|p| &p.agent);
        let agent = agents.next()?;
        // Two agents for one revision's content cannot both be right: neither is.
        agents.all(|a| a == agent).then(|| agent.clone())
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

fn with_known<T>(data_dir: &Path, read: impl FnOnce(&mut Known) -> Option<T>) -> Option<T> {
    let path = file(data_dir);
    let mut guard = READ.lock().unwrap_or_else(|e| e.into_inner());
    let all = guard.get_or_insert_with(HashMap::new);
    let known = all.entry(path.clone()).or_default();
    super::tickets::retry(&mut known.pending);
    catch_up(&path, known);
    read(known)
}

/// Reads the lines appended since the last read (whole lines only).
fn catch_up(path: &Path, known: &mut Known) {
    // Asked for every line of a list and every handoff of a queue: a stat says nothing was
    // appended, without opening the file.
    if std::fs::metadata(path).is_ok_and(|m| m.len() == known.offset) {
        return;
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < known.offset {
        // Replaced or cut: read it again from the start. The spends not yet durable stay
        // (they are no line of the file); so does what they spent.
        let pending = std::mem::take(&mut known.pending);
        let bound = std::mem::take(&mut known.bound);
        *known = Known {
            pending,
            bound,
            ..Known::default()
        };
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
        for path in &l.named {
            release(known, &l.workspace, path);
        }
        // Lines written before uploads were bound to their files prove nothing.
        let Some(file) = l.file else {
            continue;
        };
        match (l.received, l.path) {
            (Some(revision), _) => {
                known
                    .bound
                    .entry((l.workspace.clone(), file))
                    .or_insert_with(|| (revision.clone(), l.record.clone()));
                known
                    .received
                    .entry((l.workspace, revision.key, revision.revision))
                    .or_default()
                    .push(Proven {
                        digest: l.digest,
                        agent: l.agent,
                        artifacts: l.artifacts,
                        record: l.record,
                    });
            }
            (None, None) => {
                let upload = HandoffUpload {
                    place,
                    agent: l.agent,
                    digest: l.digest,
                };
                known.handoffs.insert((l.workspace, file), upload);
            }
            (None, Some(path)) => {
                let at = (l.workspace, path);
                // The path's last upload is now this one: its agent's, unbound.
                let last = known.files.get(&at).and_then(|u| u.back());
                if let Some(set) = last.and_then(|u| known.unbound.get_mut(&u.agent)) {
                    set.remove(&at);
                }
                known
                    .unbound
                    .entry(l.agent.clone())
                    .or_default()
                    .insert(at.clone());
                let uploads = known.files.entry(at).or_default();
                if uploads.len() == UPLOADS_KEPT_PER_PATH {
                    uploads.pop_front();
                }
                uploads.push_back(FileUpload {
                    place,
                    agent: l.agent,
                    sha256: l.digest,
                    file,
                });
            }
        }
    }
    known.offset += whole as u64;
}

#[cfg(test)]
mod tests {
    use super::{Declared, Receipt, Received};
    use crate::workspace::Identity;
    use std::path::Path;

    /// A file's identity: `n` tells one write from another.
    fn file(n: u64) -> Identity {
        Identity {
            dev: 1,
            ino: n,
            size: 10,
            mtime_ns: n as i64,
            ctime_ns: n as i64,
        }
    }

    struct Ask<'a> {
        record: &'a str,
        named: Option<&'a [&'a str]>,
        key: &'a str,
        revision: u32,
        digest: &'a str,
        handoff_file: Identity,
        declared: &'a [Declared<'a>],
        received: &'a [Received<'a>],
    }

    fn bind(d: &Path, a: &Ask<'_>) -> Option<String> {
        // The handoff names the files read, unless a test says otherwise.
        let named: Vec<&str> = match a.named {
            Some(named) => named.to_vec(),
            None => a.received.iter().map(|r| r.path).collect(),
        };
        super::bind(
            d,
            &Receipt {
                workspace: "alpha",
                record: a.record,
                named: &named,
                key: a.key,
                revision: a.revision,
                digest: a.digest,
                handoff_file: Some(&a.handoff_file),
                declared: a.declared,
                received: a.received,
            },
        )
    }

    fn ask<'a>(key: &'a str, digest: &'a str, handoff_file: Identity) -> Ask<'a> {
        Ask {
            record: "r1",
            named: None,
            key,
            revision: 1,
            digest,
            handoff_file,
            declared: &[],
            received: &[],
        }
    }

    #[test]
    fn an_upload_proves_its_sender_only_for_the_file_it_wrote_received_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let sender = |key: &str, rev: u32, digest: &str| {
            super::revision_sender(d, "alpha", "r1", key, rev, digest, &super::fingerprint([]))
        };
        // Nothing uploaded: nobody, and nothing recorded.
        assert_eq!(bind(d, &ask("k1", "d1", file(1))), None);
        assert_eq!(sender("k1", 1, "d1"), None);
        super::record(d, "alpha", "d1", "release-bot", &file(1)).unwrap();
        // The same content in another file (written again on the share): nobody.
        assert_eq!(bind(d, &ask("k1", "d1", file(2))), None);
        // Other content in the uploaded file: nobody.
        assert_eq!(bind(d, &ask("k1", "d2", file(1))), None);
        assert_eq!(
            bind(d, &ask("k1", "d1", file(1))).as_deref(),
            Some("release-bot")
        );
        assert_eq!(sender("k1", 1, "d1").as_deref(), Some("release-bot"));
        assert_eq!(sender("k1", 1, "d2"), None);
        assert_eq!(sender("k1", 2, "d1"), None);
        assert_eq!(
            super::revision_sender(d, "beta", "r1", "k1", 1, "d1", &super::fingerprint([])),
            None
        );
        // The same file received again as another revision, or another handoff: nobody.
        let mut again = ask("k1", "d1", file(1));
        again.revision = 3;
        assert_eq!(bind(d, &again), None);
        assert_eq!(sender("k1", 3, "d1"), None);
        assert_eq!(bind(d, &ask("k2", "d1", file(1))), None);
        // The same revision of the same key received again into another record (the store's
        // records made anew): nobody.
        let mut anew = ask("k1", "d1", file(1));
        anew.record = "r2";
        assert_eq!(bind(d, &anew), None);
        // The first revision keeps its answer.
        assert_eq!(sender("k1", 1, "d1").as_deref(), Some("release-bot"));
    }

    #[test]
    fn a_revision_is_proven_only_with_bytes_its_sender_declared_or_uploaded_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut handoffs = 100;
        let mut got = |digest: &str, declared: &[&str], sha: &str, artifact: Identity| {
            let received = [Received {
                path: "inbox/app.sh",
                sha256: sha,
                file: &artifact,
            }];
            let declared: Vec<Declared<'_>> = declared
                .iter()
                .map(|sha256| Declared {
                    path: "./inbox/app.sh",
                    sha256,
                })
                .collect();
            // Each question is a new handoff upload of `digest`, received as its own key.
            handoffs += 1;
            super::record(d, "alpha", digest, "release-bot", &file(handoffs)).unwrap();
            let key = format!("k{handoffs}");
            let mut a = ask(&key, digest, file(handoffs));
            a.declared = &declared;
            a.received = &received;
            bind(d, &a)
        };
        super::record_file(d, "alpha", "inbox/app.sh", "aa", "release-bot", &file(1)).unwrap();
        assert_eq!(
            got("h1", &[], "aa", file(1)).as_deref(),
            Some("release-bot")
        );
        // The same bytes in another file (written again on the share): not the upload.
        assert_eq!(got("h1", &[], "aa", file(2)), None);
        // Bytes swapped in on the share: neither uploaded nor declared.
        assert_eq!(got("h1", &[], "bb", file(3)), None);
        assert_eq!(
            got("h1", &["BB"], "bb", file(3)).as_deref(),
            Some("release-bot")
        );
        // Another token's upload to the path, or the sender's own after the handoff, is not
        // the sender's bytes for it.
        super::record_file(d, "alpha", "inbox/app.sh", "cc", "helper", &file(4)).unwrap();
        assert_eq!(got("h2", &[], "cc", file(4)), None);
        // An older upload of the sender's, put back in place of its last one, is not it.
        super::record_file(d, "alpha", "inbox/app.sh", "dd", "release-bot", &file(5)).unwrap();
        assert_eq!(got("h3", &[], "aa", file(1)), None);
        assert_eq!(
            got("h3", &[], "dd", file(5)).as_deref(),
            Some("release-bot")
        );
        // A sha256 declared for another artifact's path proves nothing of this one's bytes.
        let elsewhere = [Declared {
            path: "inbox/other.sh",
            sha256: "bb",
        }];
        let received = [Received {
            path: "inbox/app.sh",
            sha256: "bb",
            file: &file(3),
        }];
        super::record(d, "alpha", "h4", "release-bot", &file(50)).unwrap();
        let mut a = ask("k50", "h4", file(50));
        a.declared = &elsewhere;
        a.received = &received;
        assert_eq!(bind(d, &a), None);
    }

    /// What receipt proved answers only for the bytes it read: the same key, revision and
    /// handoff text with other artifact bytes (a workspace made again under the name, its
    /// store new, the handoff written back with a script swapped in) has no sender.
    #[test]
    fn a_receipt_proves_only_the_artifact_bytes_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        super::record_file(d, "alpha", "inbox/deploy.sh", "aa", "release-bot", &file(1)).unwrap();
        super::record(d, "alpha", "h1", "release-bot", &file(2)).unwrap();
        let received = [Received {
            path: "inbox/deploy.sh",
            sha256: "aa",
            file: &file(1),
        }];
        let mut a = ask("rel-a", "h1", file(2));
        a.received = &received;
        assert_eq!(bind(d, &a).as_deref(), Some("release-bot"));
        let read = |sha: &str| super::fingerprint([("inbox/deploy.sh", sha)]);
        let sender = |fp: &str| super::revision_sender(d, "alpha", "r1", "rel-a", 1, "h1", fp);
        assert_eq!(sender(&read("AA")).as_deref(), Some("release-bot"));
        assert_eq!(sender(&read("ee")), None);
        assert_eq!(sender(&super::fingerprint([])), None);
        // The same revision and bytes received into another record (a workspace made again
        // under its name, its store new): nobody.
        let other = |record: &str| {
            super::revision_sender(d, "alpha", record, "rel-a", 1, "h1", &read("aa"))
        };
        assert_eq!(other("r1").as_deref(), Some("release-bot"));
        assert_eq!(other("r2"), None);
    }

    /// A file reached through a link at the path the handoff names (`inbox/deploy.sh` leading
    /// to `inbox/scratch/danger.sh`, which the sender once uploaded) is not the artifact the
    /// handoff stands for: nobody.
    #[test]
    fn an_artifact_read_at_another_path_than_the_one_named_proves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        super::record_file(d, "alpha", "inbox/deploy.sh", "aa", "release-bot", &file(1)).unwrap();
        super::record_file(
            d,
            "alpha",
            "inbox/scratch/danger.sh",
            "bb",
            "release-bot",
            &file(2),
        )
        .unwrap();
        super::record(d, "alpha", "h1", "release-bot", &file(3)).unwrap();
        let received = [Received {
            path: "inbox/scratch/danger.sh",
            sha256: "bb",
            file: &file(2),
        }];
        let named: &[&str] = &["inbox/deploy.sh"];
        let mut a = ask("rel-a", "h1", file(3));
        a.received = &received;
        a.named = Some(named);
        assert_eq!(bind(d, &a), None);
        // Named at its own path ("./" and all), the same file proves its sender.
        super::record(d, "alpha", "h2", "release-bot", &file(4)).unwrap();
        let named: &[&str] = &["./inbox/scratch/danger.sh"];
        let mut a = ask("rel-b", "h2", file(4));
        a.received = &received;
        a.named = Some(named);
        assert_eq!(bind(d, &a).as_deref(), Some("release-bot"));
    }

    /// A line torn by a crash loses only itself: the upload appended after it still proves.
    #[test]
    fn a_torn_last_line_does_not_swallow_the_next_upload() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        super::record(d, "alpha", "h0", "release-bot", &file(1)).unwrap();
        let log = super::file(d);
        let mut text = std::fs::read(&log).unwrap();
        text.truncate(text.len() / 2);
        std::fs::write(&log, &text).unwrap();
        super::record(d, "alpha", "h1", "release-bot", &file(2)).unwrap();
        assert_eq!(
            bind(d, &ask("k1", "h1", file(2))).as_deref(),
            Some("release-bot")
        );
    }

    /// A receipt whose line cannot be written proves nothing, and spends its upload: the same
    /// file read as another revision once the disk takes lines again proves nothing either.
    #[test]
    fn an_upload_whose_received_line_failed_is_spent_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        super::record(d, "alpha", "h1", "release-bot", &file(1)).unwrap();
        assert_eq!(
            super::revision_sender(d, "alpha", "r1", "k0", 1, "h1", "-"),
            None
        );
        // The folder of the log becomes a file: nothing can be appended (as on a full disk).
        let policy = d.join("policy");
        std::fs::rename(&policy, d.join("kept")).unwrap();
        std::fs::write(&policy, b"").unwrap();
        assert_eq!(bind(d, &ask("k1", "h1", file(1))), None);
        std::fs::remove_file(&policy).unwrap();
        std::fs::rename(d.join("kept"), &policy).unwrap();
        let mut again = ask("k1", "h1", file(1));
        again.revision = 2;
        assert_eq!(bind(d, &again), None);
        assert_eq!(bind(d, &ask("k2", "h1", file(1))), None);
        // Nor after a restart: the spend made it to the disk once it could.
        restart(d);
        assert_eq!(bind(d, &again), None);
    }

    /// What this process remembers of `d`'s file, forgotten as by a restart.
    fn restart(d: &Path) {
        let mut guard = super::READ.lock().unwrap();
        guard
            .get_or_insert_with(Default::default)
            .remove(&super::file(d));
    }

    /// The log cannot take the `received` line (a folder in its place, as a full or failing
    /// disk): the upload is spent on the disk before it proves anything, so a restart with the
    /// log back does not make it prove another revision.
    #[test]
    fn an_upload_whose_received_line_failed_stays_spent_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        super::record(d, "alpha", "h1", "release-bot", &file(1)).unwrap();
        let log = super::file(d);
        let kept = d.join("kept.jsonl");
        // Read before the fault, as a daemon running would have.
        assert_eq!(
            super::revision_sender(d, "alpha", "r1", "k0", 1, "h1", "-"),
            None
        );
        std::fs::rename(&log, &kept).unwrap();
        std::fs::create_dir(&log).unwrap();
        assert_eq!(bind(d, &ask("k1", "h1", file(1))), None);
        std::fs::remove_dir(&log).unwrap();
        std::fs::rename(&kept, &log).unwrap();
        restart(d);
        let mut again = ask("k1", "h1", file(1));
        again.revision = 2;
        assert_eq!(bind(d, &again), None);
        assert_eq!(bind(d, &ask("k1", "h1", file(1))), None);
        // An upload made afterwards proves as ever.
        super::record(d, "alpha", "h2", "release-bot", &file(2)).unwrap();
        assert_eq!(
            bind(d, &ask("k2", "h2", file(2))).as_deref(),
            Some("release-bot")
        );
    }
}
