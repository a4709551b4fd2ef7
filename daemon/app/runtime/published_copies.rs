//! The published copies of records in `.baton/handoffs/` against the store, at start-up. A
//! copy the daemon never wrote (a forged decision, a planted archive of a key it never
//! received, an edited revision) is kept as evidence in data_dir, recorded in the workspace's
//! tamper history, and replaced by the store's version; a copy a crash left behind (an older
//! decision or revision the store committed, one the store no longer publishes) is brought up
//! to date, and told as recovery (`audit.late_write`, a `late_write` entry in the history); a
//! missing file is simply published again.

use crate::app::model::DECISION;
use crate::app::state::Record;
use crate::audit::anchor::{Anchors, Entry};
use crate::clock::now_rfc3339;
use crate::store::memo::{self, Memo};
use crate::store::Store;
use crate::workspace::{key_dir_name, OpenedDir, Temps, Workspace};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// One forged or changed copy, as recorded.
#[derive(Debug, Clone)]
pub struct Finding {
    pub text: String,
    pub evidence: Option<String>,
}

const LIMIT: usize = 16 * 1024 * 1024;
/// Temp files older than this at start-up are left from crashed writes.
pub(in crate::app) const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(600);

/// What `check` found.
pub(in crate::app) struct Checked {
    /// Copies tampered with (set aside).
    pub findings: Vec<Finding>,
    /// Keys whose copy in the workspace is, file for file, what the store publishes: nothing
    /// to publish again at start.
    pub current: HashSet<String>,
    /// The fingerprints of the current copies' folders (`OpenedDir::stamp`), by folder name:
    /// what the next start compares instead of reading the copies again.
    pub stamps: Stamps,
    /// Record folders found unchanged by their fingerprint, and folders read.
    pub unchanged: usize,
    pub read: usize,
}

/// Record folders' fingerprints, by folder name, as hex (kept in the store, out of agents'
/// reach, so trusted as the daemon's own memo).
pub(in crate::app) type Stamps = BTreeMap<String, String>;

/// Compares every copy with the store; returns what was found tampered with, and which
/// records' copies are current. `handoffs`: the workspace's `.baton/handoffs/`, opened once
/// (each record's folder is opened beneath it, once); `truths`: what the store publishes for
/// each record, by its folder name (`records::published_with` of the files the load read).
/// Temp files of crashed writes in the record folders are removed on the way. `damaged`: the
/// record folders the store found damaged, whose copies are left alone.
#[allow(clippy::too_many_arguments)] // what one start-up pass over the copies reads; no struct to share
pub(in crate::app) fn check(
    ws: &Workspace,
    handoffs: Option<&OpenedDir>,
    store: &Store,
    anchors: &Anchors,
    records: &BTreeMap<String, Box<Record>>,
    truths: &mut HashMap<String, Vec<(String, Vec<u8>)>>,
    memo: &Stamps,
    damaged: &HashSet<String>,
) -> Checked {
    let known: HashMap<String, &Record> = records
        .values()
        .map(|r| (key_dir_name(&r.meta.key), &**r))
        .collect();
    let mut found = Vec::new();
    let mut current = HashSet::new();
    let mut stamps = Stamps::new();
    let (mut unchanged, mut read) = (0, 0);
    let dirs = handoffs.map(|h| h.list_dirs().unwrap_or_default());
    for dir in dirs.unwrap_or_default() {
        // The store cannot say what this record holds (its files are damaged): its copies
        // may be the genuine ones `baton repair` rebuilds it from.
        if damaged.contains(&dir) {
            continue;
        }
        let folder = ws.handoffs_dir().join(&dir);
        let truth: HashMap<String, Vec<u8>> = match known.get(&dir) {
            Some(_) => truths
                .remove(&dir)
                .unwrap_or_default()
                .into_iter()
                .collect(),
            None => HashMap::new(),
        };
        let opened = match handoffs.map(|h| h.sub(&dir)) {
            Some(Ok(Some(opened))) => Some(opened),
            Some(Err(e)) => {
                tracing::warn!(workspace = %ws.name, dir = %folder.display(), error = %e, "not listing a folder");
                None
            }
            _ => None,
        };
        // The folder and its files as they were when last found current: not read again (at
        // 100,000 records, half a million reads a start), nor swept for temp files (it had
        // none then, and adding one would have changed the folder's fingerprint).
        // Sorted: the fingerprint is over the names in one order, whatever the map's.
        let mut sorted: Vec<(&str, &[u8])> =
            truth.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
        sorted.sort_unstable();
        let names: Vec<&str> = sorted.iter().map(|(n, _)| *n).collect();
        let stamp = |o: &OpenedDir| {
            let stamp = o.stamp(&names).ok().flatten()?;
            Some(memo_entry(stamp, &sorted))
        };
        // Taken before the copies are read; a fingerprint is kept only if it is the same after.
        let before = opened.as_ref().and_then(stamp);
        if let (Some(rec), Some(kept)) = (known.get(&dir), memo.get(&dir)) {
            if before.as_ref() == Some(kept) {
                current.insert(rec.meta.key.clone());
                stamps.insert(dir, kept.clone());
                unchanged += 1;
                continue;
            }
        }
        read += 1;
        let temps = match opened.as_ref().map(|o| o.remove_stale_temps(STALE_TEMP)) {
            Some(Ok(temps)) => temps,
            Some(Err(e)) => {
                tracing::debug!(dir = %folder.display(), error = %e, "cannot clean temp files");
                Temps {
                    removed: 0,
                    young: 1,
                }
            }
            None => Temps::default(),
        };
        let files = match opened.as_ref().map(OpenedDir::list_json) {
            Some(Ok(files)) => files,
            Some(Err(e)) => {
                tracing::warn!(workspace = %ws.name, dir = %folder.display(), error = %e, "not listing a folder");
                Vec::new()
            }
            None => Vec::new(),
        };
        let mut same = files.len() == truth.len();
        for file in files {
            let read = opened.as_ref().map(|o| o.read_written_out(&file, LIMIT));
            let Some(Ok(Some(copy))) = read else {
                same = false;
                continue;
            };
            same &= truth.get(&file) == Some(&copy);
            let why = match known.get(&dir) {
                None if claims_a_record(&file) => {
                    Some("a record of a handoff the daemon never received".to_string())
                }
                None => None,
                Some(_) => changed(store, truth.get(&file), &dir, &file, &copy),
            };
            let at = format!(".baton/handoffs/{dir}/{file}");
            match why {
                Some(why) => {
                    let text = format!("{at}: {why}");
                    found.push(set_aside(ws, anchors, &folder.join(&file), &copy, text));
                }
                // A copy behind the store is brought up to date (published again, or removed
                // when the store publishes no such file now) by the load: recovery, told as
                // such once the workspace is served, never in silence.
                None if known.contains_key(&dir) && truth.get(&file) != Some(&copy) => {
                    let published = truth.contains_key(&file);
                    let late =
                        late_copy_because(ws, anchors, &at, &copy, published, LEFT_BY_A_CRASH);
                    anchors.note_found_late(late);
                }
                None => {}
            }
        }
        if let (true, Some(rec)) = (same, known.get(&dir)) {
            current.insert(rec.meta.key.clone());
            // Not while temp files are left in it: the next start sweeps them again.
            let swept = temps.young == 0;
            let after = opened.as_ref().filter(|_| swept).and_then(stamp);
            if let Some(after) = after.filter(|a| before.as_ref() == Some(a)) {
                stamps.insert(dir, after);
            }
        }
    }
    Checked {
        findings: found,
        current,
        stamps,
        unchanged,
        read,
    }
}

/// What the memo keeps of a record folder found current: its fingerprint (`OpenedDir::stamp`)
/// bound to the bytes the store publishes into it (`truth`, sorted by name). A crash between
/// a change's commit and its copy leaves the folder as it was and the store ahead of it: the
/// entry then no longer matches, and the start reads the copies and publishes them again.
pub(in crate::app) fn memo_entry(stamp: [u8; 16], truth: &[(&str, &[u8])]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(stamp);
    for (name, bytes) in truth {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    }
    hex::encode(&hash.finalize()[..16])
}

/// The memo entry of a record's copies (`folder`) while the daemon runs: `Some` when they
/// are, file for file, what the store publishes (`truth`, sorted by name, as `published`
/// gives it), with no temp file beside them, and nothing changed while they were compared
/// (the fingerprint the same before and after; the copies' pages written out in between, see
/// `OpenedDir::read_written_out`).
/// Nothing is set aside here: a copy that differs is left to the next start's check.
pub(in crate::app) fn current_entry(
    folder: &OpenedDir,
    truth: &[(String, Vec<u8>)],
) -> Option<String> {
    let truth: Vec<(&str, &[u8])> = truth.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    let names: Vec<&str> = truth.iter().map(|(n, _)| *n).collect();
    let before = folder.stamp(&names).ok()??;
    let temps = folder.remove_stale_temps(STALE_TEMP).ok()?;
    if temps.removed + temps.young > 0 || folder.list_json().ok()? != names {
        return None;
    }
    for (name, bytes) in &truth {
        let copy = folder.read_written_out(name, bytes.len() + 1).ok()??;
        if copy != *bytes {
            return None;
        }
    }
    // The same fingerprint after the reads: the bytes compared are the ones it stands for.
    let after = folder.stamp(&names).ok()??;
    (after == before).then(|| memo_entry(before, &truth))
}

/// A record folder's copies as last found current while served: the names compared and the
/// folder's fingerprint (`OpenedDir::stamp`) then.
pub(in crate::app) type Seen = (Vec<String>, [u8; 16]);

/// Whether record folder `dir` beneath `handoffs` is as it was when its files `names` had
/// the fingerprint `stamp`: no one wrote into it since, this node included (the node serving
/// it rewrites a record's copies with each change, which changes the fingerprint).
pub(in crate::app) fn unchanged(
    handoffs: &OpenedDir,
    dir: &str,
    names: &[String],
    stamp: &[u8; 16],
) -> bool {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let now = handoffs
        .sub(dir)
        .ok()
        .flatten()
        .and_then(|f| f.stamp(&names).ok().flatten());
    now.as_ref() == Some(stamp)
}

/// What `planted` found in a folder of no record.
#[derive(Default)]
pub(in crate::app) struct Planted {
    /// Files claiming a record, set aside as tampering.
    pub findings: Vec<Finding>,
    /// The folder as left, when settled (see `unchanged`).
    pub seen: Option<Seen>,
}

/// A folder `dir` of `.baton/handoffs/` that is no record the store committed, looked at
/// while the workspace is served: every file in it that claims a record is set aside as
/// tampering, as a start does (`check`); the copies of `invalid` answers (written only into
/// the workspace) are left. Called under the workspace's state lock: none of this node's own
/// receipts is half done meanwhile.
pub(in crate::app) fn planted(
    ws: &Workspace,
    handoffs: &OpenedDir,
    anchors: &Anchors,
    dir: &str,
) -> Planted {
    let mut out = Planted::default();
    let Ok(Some(folder)) = handoffs.sub(dir) else {
        return out;
    };
    let Ok(files) = folder.list_json() else {
        return out;
    };
    for file in files.iter().filter(|f| claims_a_record(f)) {
        let Ok(Some(copy)) = folder.read_written_out(file, LIMIT) else {
            continue;
        };
        let text = format!(
            ".baton/handoffs/{dir}/{file}: a record of a handoff the daemon never received"
        );
        let path = ws.handoffs_dir().join(dir).join(file);
        out.findings
            .push(set_aside(ws, anchors, &path, &copy, text));
    }
    let Ok(left) = folder.list_json() else {
        return out;
    };
    let names: Vec<&str> = left.iter().map(String::as_str).collect();
    if let Ok(Some(stamp)) = folder.stamp(&names) {
        out.seen = Some((left, stamp));
    }
    out
}

/// What `recheck` found in one record's copies while the workspace is served.
#[derive(Default)]
pub(in crate::app) struct Rechecked {
    /// The folder as found, when its copies are the store's and settled (see `unchanged`).
    pub seen: Option<Seen>,
    /// Copies not what the store publishes now but no forgery (a state it committed before,
    /// written late by a node that had lost the lease; a lagging copy): told as recovery.
    pub late: Vec<crate::audit::SetAside>,
    /// Copies no state of the store held: set aside as tampering.
    pub findings: Vec<Finding>,
    /// Something differed or was missing: the record is to be published again.
    pub differs: bool,
}

/// The copies of record folder `dir` (opened beneath `handoffs`) compared with the store
/// (`truth`, as `records::published` gives it) while a clustered workspace is served: a node
/// that lost the lease while paused between its fence check and a copy's rename (see
/// `crate::workspace::fence`) renames when it wakes, after its successor moved the record
/// on, and nothing but this look would see it until the next takeover. A copy of a state
/// the store committed (an earlier decision or revision) or of a file that lags it is
/// recovery: kept as evidence, recorded as `late_write` (not tampering), and the caller
/// publishes the record again; anything else is tampering, as at a start (`check`).
/// Called under the workspace's state lock: none of this node's own writes of the record is
/// half done meanwhile.
pub(in crate::app) fn recheck(
    ws: &Workspace,
    handoffs: &OpenedDir,
    store: &Store,
    anchors: &Anchors,
    dir: &str,
    truth: &[(String, Vec<u8>)],
) -> Rechecked {
    let mut out = Rechecked::default();
    let Ok(Some(folder)) = handoffs.sub(dir) else {
        // No folder: nothing written late into it; the next change publishes it.
        return out;
    };
    let names: Vec<&str> = truth.iter().map(|(n, _)| n.as_str()).collect();
    let stamp = || folder.stamp(&names).ok().flatten();
    let before = stamp();
    let files = match folder.list_json() {
        Ok(files) => files,
        Err(e) => {
            tracing::debug!(workspace = %ws.name, dir, error = %e, "not listing a record folder");
            return out;
        }
    };
    out.differs = names.iter().any(|n| !files.iter().any(|f| f == n));
    let path = |file: &str| ws.handoffs_dir().join(dir).join(file);
    for file in &files {
        // Written only into the workspace (`invalid` answers): nothing to compare with.
        if !claims_a_record(file) {
            continue;
        }
        let Ok(Some(copy)) = folder.read_written_out(file, LIMIT) else {
            out.differs = true;
            continue;
        };
        let ours = truth.iter().find(|(n, _)| n == file).map(|(_, b)| b);
        if ours == Some(&copy) {
            continue;
        }
        out.differs = true;
        let at = format!(".baton/handoffs/{dir}/{file}");
        if let Some(why) = changed(store, ours, dir, file, &copy) {
            let text = format!("{at}: {why}");
            out.findings
                .push(set_aside(ws, anchors, &path(file), &copy, text));
            continue;
        }
        out.late
            .push(late_copy(ws, anchors, &at, &copy, ours.is_some()));
        // Published again by the caller; one the store no longer publishes goes now.
        if ours.is_none() {
            if let Err(e) = ws.remove_volatile(&path(file)) {
                tracing::warn!(workspace = %ws.name, file = %at, error = %e, "cannot remove a copy written late");
            }
        }
    }
    // The same fingerprint after the reads: the bytes compared are the ones it stands for.
    if let Some(stamp) = before.filter(|b| !out.differs && stamp() == Some(*b)) {
        out.seen = Some((names.iter().map(|n| n.to_string()).collect(), stamp));
    }
    out
}

/// Why a copy the sweep (or a decision's repair) finds behind the store is there.
const WRITTEN_LATE: &str =
    "written late by a node that had lost the lease, or left behind by a crash";
/// Why a copy a start finds behind the store is there: no node writes while none serves.
const LEFT_BY_A_CRASH: &str = "found at the start: the daemon stopped (a crash, a kill, a power cut) between the store's change and the copy's, or a node that had lost the lease wrote it late";

/// Records a copy found not to be what the store publishes, but no forgery (see `changed`):
/// its bytes kept as evidence, a `late_write` entry in the history (recovery, not
/// tampering).
pub(in crate::app) fn late_copy(
    ws: &Workspace,
    anchors: &Anchors,
    at: &str,
    copy: &[u8],
    published: bool,
) -> crate::audit::SetAside {
    late_copy_because(ws, anchors, at, copy, published, WRITTEN_LATE)
}

/// `late_copy`, saying `why` the copy was behind the store.
fn late_copy_because(
    ws: &Workspace,
    anchors: &Anchors,
    at: &str,
    copy: &[u8],
    published: bool,
    why: &str,
) -> crate::audit::SetAside {
    let evidence = anchors
        .keep_evidence(&format!("late-copy-{}", at.replace('/', "_")), copy)
        .map(|p| p.display().to_string())
        .inspect_err(|e| tracing::error!(error = %e, "cannot keep evidence"))
        .ok();
    let now = match published {
        true => "published again from the store, late",
        false => "removed late: the store publishes no such file now",
    };
    let text = format!(
        "{at}: a copy of a state the store committed before, not of its current one ({why}); {now}"
    );
    tracing::warn!(workspace = %ws.name, evidence = ?evidence, "{text}");
    let entry = Entry {
        at: now_rfc3339(),
        kind: crate::audit::anchor::LATE_WRITE.into(),
        text: text.clone(),
        anchored: None,
        evidence: evidence.clone(),
    };
    if let Err(e) = anchors.record(&entry) {
        tracing::error!(error = %e, "cannot record a late copy in the history");
    }
    crate::audit::SetAside {
        file: at.to_string(),
        text,
        evidence,
    }
}

/// Files whose presence would make a folder look like a record: anything but the copies of
/// `invalid` answers, which are written only into the workspace.
fn claims_a_record(file: &str) -> bool {
    !file.starts_with("invalid-")
}

/// Why the copy `file` of a known record is not one the daemon wrote, if it is not. `truth`:
/// what the daemon publishes under that name (see `records::published`).
fn changed(
    store: &Store,
    truth: Option<&Vec<u8>>,
    dir: &str,
    file: &str,
    copy: &[u8],
) -> Option<String> {
    let ours = |name: &str| {
        store
            .read(&Path::new("handoffs").join(dir).join(name))
            .ok()
            .flatten()
    };
    // Copies are written without fsyncs: after a power cut one may be empty. That is a crash's
    // residue, not a forgery; it is published again.
    if truth.map(Vec::as_slice) == Some(copy) || copy.is_empty() {
        return None;
    }
    let is_decision = file == DECISION || file.starts_with("decision-rev-");
    if is_decision {
        // An older decision a crash kept from being replaced is stale, not forged.
        let earlier = store
            .files_of(dir)
            .into_iter()
            .filter(|f| f.starts_with("decision"));
        if earlier.filter_map(|f| ours(&f)).any(|d| d == copy) {
            return None;
        }
        return Some("a decision the daemon never made".into());
    }
    if file.starts_with("rev-") || file == crate::workspace::HANDOFF_FILE {
        // A revision the store committed, in a copy a crash kept from being replaced (killed
        // between an agent's revision's commit and its publication): stale, not forged.
        let committed = store
            .files_of(dir)
            .into_iter()
            .filter(|f| f.starts_with("rev-") || f == crate::workspace::HANDOFF_FILE);
        if committed.filter_map(|f| ours(&f)).any(|r| r == copy) {
            return None;
        }
        return Some(match truth {
            Some(_) => "a revision changed after the daemon archived it".into(),
            None => "a revision the daemon never received".into(),
        });
    }
    // meta.json, signoffs.json, approvals.json and claim.json lag the store after a crash;
    // they are republished.
    None
}

/// Keeps the copy as evidence, records the finding, and removes the copy (the store's version
/// is published again by the caller).
pub(in crate::app) fn set_aside(
    ws: &Workspace,
    anchors: &Anchors,
    path: &Path,
    copy: &[u8],
    text: String,
) -> Finding {
    let name = path
        .strip_prefix(ws.handoffs_dir())
        .map(|p| p.to_string_lossy().replace('/', "_"))
        .unwrap_or_else(|_| "record".into());
    let evidence = anchors
        .keep_evidence(&name, copy)
        .map(|p| p.display().to_string())
        .inspect_err(|e| tracing::error!(error = %e, "cannot keep evidence"))
        .ok();
    tracing::error!(workspace = %ws.name, found = %text, "record copy tampered with; set aside");
    let entry = Entry {
        at: now_rfc3339(),
        kind: "tampered".into(),
        text: text.clone(),
        anchored: None,
        evidence: evidence.clone(),
    };
    if let Err(e) = anchors.record(&entry) {
        tracing::error!(error = %e, "cannot record tampering in the history");
    }
    if let Err(e) = ws.remove(path) {
        tracing::error!(error = %e, "cannot remove a tampered record copy");
    }
    Finding { text, evidence }
}

/// The memo's file in a workspace's store folder.
pub(in crate::app) const STAMPS: &str = "published-stamps.json";

/// The memo as last kept; absent or torn, the start reads every copy. A cache, not a
/// record: damage costs a read of the copies, never a decision, and is told
/// (`memo_damage`). Plain JSON, overwritten in place (see `save_memo`).
pub(in crate::app) fn read_memo(store: &Store) -> Memo<Stamps> {
    memo::read(store, Path::new(STAMPS))
}

/// What a damaged copies' memo costs, for the log.
pub(in crate::app) const STAMPS_REBUILT: &str =
    "rebuilt: every published copy is read and compared with the store once; nothing to do";

/// Keeps the memo. Not synced: a memo lost or torn by a crash only makes the next start read
/// the copies, as it did before there was one.
pub(in crate::app) fn save_memo(store: &Store, memo: &Stamps) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(memo).map_err(std::io::Error::other)?;
    store.overwrite(Path::new(STAMPS), &bytes)
}

#[cfg(test)]
mod tests {
    use super::current_entry;
    use crate::workspace::Workspace;

    /// The running daemon's check keeps a fingerprint only of copies that are, file for file,
    /// the store's: an entry kept for anything else would hide that folder from the next
    /// start's check.
    #[test]
    fn only_copies_equal_to_the_store_and_alone_get_a_memo_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let handoffs = tmp.path().join(".baton/handoffs");
        let truth = vec![
            ("a.json".to_string(), b"{\"a\":1}".to_vec()),
            ("b.json".to_string(), b"{\"b\":2}".to_vec()),
        ];
        let make = |dir: &str, extra: Option<(&str, &[u8])>, skip: Option<&str>| {
            let folder = handoffs.join(dir);
            std::fs::create_dir_all(&folder).unwrap();
            for (name, bytes) in &truth {
                if skip != Some(name.as_str()) {
                    std::fs::write(folder.join(name), bytes).unwrap();
                }
            }
            if let Some((name, bytes)) = extra {
                std::fs::write(folder.join(name), bytes).unwrap();
            }
        };
        make("same", None, None);
        make("edited", Some(("b.json", b"{\"b\":3}")), None);
        make("planted", Some(("decision.json", b"{}")), None);
        make("missing", None, Some("b.json"));
        make("temp", Some((".baton-tmp-x", b"half")), None);
        make("mapped", None, None);
        // An agent's shared writable mapping of a copy, dirtied with the same bytes: the times
        // are set now, and while the page stays dirty, later writes through it set nothing.
        let mapped = Mapped::new(&handoffs.join("mapped/b.json"));
        mapped.write(0, b'{');
        let ws = Workspace::open(tmp.path()).unwrap();
        let opened = ws.open_dir(&ws.handoffs_dir()).unwrap().unwrap();
        let entry = |dir: &str| current_entry(&opened.sub(dir).unwrap().unwrap(), &truth);
        // Changed within the last seconds: no fingerprint is taken yet.
        assert_eq!(entry("same"), None);
        std::thread::sleep(std::time::Duration::from_millis(3100));
        assert!(entry("same").is_some());
        assert_eq!(
            entry("same"),
            entry("same"),
            "the same folder, the same entry"
        );
        for dir in ["edited", "planted", "missing", "temp"] {
            assert_eq!(entry(dir), None, "{dir}");
        }
        // The check wrote the page out: the forgery through the mapping faults and sets the
        // times, so the fingerprint the entry stands for is gone.
        let folder = opened.sub("mapped").unwrap().unwrap();
        let names = ["a.json", "b.json"];
        assert!(entry("mapped").is_some());
        let kept = folder.stamp(&names).unwrap();
        assert!(kept.is_some());
        mapped.write(5, b'9');
        // tmpfs has no writeback: its pages are never written out, nor write-protected.
        if !crate::workspace::is_tmpfs(tmp.path()) {
            assert_ne!(folder.stamp(&names).unwrap(), kept, "a write unseen");
        }
        let other = vec![truth[0].clone(), ("b.json".into(), b"{\"b\":4}".to_vec())];
        let same = opened.sub("same").unwrap().unwrap();
        assert_eq!(current_entry(&same, &other), None, "the store moved on");
    }

    /// A file mapped shared and writable, as an agent could map a copy.
    struct Mapped {
        at: *mut u8,
        len: usize,
    }

    impl Mapped {
        fn new(path: &std::path::Path) -> Mapped {
            use std::os::fd::AsRawFd;
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            let len = file.metadata().unwrap().len() as usize;
            let (rw, shared) = (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED);
            // SAFETY: a fresh mapping of an open file, of its length; unmapped on drop.
            let at =
                unsafe { libc::mmap(std::ptr::null_mut(), len, rw, shared, file.as_raw_fd(), 0) };
            assert_ne!(at, libc::MAP_FAILED);
            Mapped { at: at.cast(), len }
        }

        /// Writes one byte through the mapping (no system call).
        fn write(&self, offset: usize, byte: u8) {
            assert!(offset < self.len);
            // SAFETY: within the mapping, which lives as long as `self`.
            unsafe { self.at.add(offset).write_volatile(byte) }
        }
    }

    impl Drop for Mapped {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe { libc::munmap(self.at.cast(), self.len) };
        }
    }
}
