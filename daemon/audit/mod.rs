//! The tamper-evident audit log: `.baton/events.jsonl`, one event a line, each line carrying
//! the sha256 of the line before it. The log lives in the workspace, where agents can write,
//! so the daemon also anchors it in data_dir (`anchor`): before every append it records where
//! the log must end. A log found anywhere else (shortened, lengthened, edited, replaced by a
//! link) is never re-anchored in silence: a copy is kept as evidence out of the agents' reach,
//! the finding goes into the append-only history, and a new chain begins with `audit.broken`.
//! `baton audit verify` reports TAMPERED until an administrator acknowledges it.

pub mod anchor;
mod blocked;
pub mod handed;
mod late;
pub mod ledger;
mod lines;
mod recheck;
mod reverify;
mod tail;
mod take_back;
mod verify;

pub use anchor::{anchored, Anchor, Anchors, InFlight, Mark, RemoteAnchors};
pub use blocked::Blocked;
pub use late::{any_set_aside, SetAside};
pub use ledger::Ledger;
pub use lines::{read_proven, Written, PROOF_BYTES};
pub use reverify::{Pace, Reverified};
pub use verify::{verify, verify_read, Report};

/// The readers of a log's lines over bytes rather than a workspace's file, for the fuzz
/// targets (fuzz/) and their corpus test only.
#[doc(hidden)]
pub mod fuzzing {
    use super::{Mark, Written};

    fn head(hash: &str) -> Mark {
        Mark {
            seq: 0,
            hash: hash.to_string(),
            len: None,
        }
    }

    /// `AuditLog::proven_lines`' walk back from the line whose sha256 (hex) is `head`.
    pub fn chained_back(bytes: &[u8], head_hash: &str) -> Vec<Written> {
        super::lines::chained_back(bytes, &head(head_hash))
    }

    /// The re-check's read of a whole chain (`recheck`): `None` when it ends at `head`.
    pub fn chain_problem(bytes: &[u8], head_hash: &str) -> Option<String> {
        super::recheck::chain_problem_of(bytes, &head(head_hash))
            .expect("reading bytes in memory does not fail")
    }
}

use crate::clock::now_rfc3339;
use crate::events::{Event, EventType};
use crate::store::group;
use crate::workspace::{ForeignFile, ReadError, Workspace};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Largest log copied as evidence; beyond it only its size is recorded.
const EVIDENCE_LIMIT: usize = 256 * 1024 * 1024;

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

#[derive(Deserialize)]
struct Chained {
    seq: u64,
    prev: String,
    #[serde(default)]
    at: Option<String>,
}

/// A break of the chain the daemon found and recorded, for the caller to raise as an alert:
/// the `audit.broken` event, and whether it opened the new chain yet (then it is announced).
#[derive(Debug, Clone)]
pub struct Break {
    pub event: Event,
    pub logged: bool,
}

/// The writer of one workspace's log. Appends are serialized by the mutex.
#[derive(Debug)]
pub struct AuditLog {
    /// The workspace whose `.baton/events.jsonl` this is; every open goes through its
    /// confined file operations, so a swapped `.baton/` can never redirect the log.
    ws: Workspace,
    anchors: Anchors,
    head: Mutex<Mark>,
    /// The head moved since the anchor was last flushed to the ledger.
    anchor_stale: AtomicBool,
    /// The generation of the anchor last written (see `Anchor::gen`).
    gen: AtomicU64,
    /// `at` of the last event when the log was opened.
    last_at: Option<String>,
    /// How far events were handed on to the outbox (see `handed`).
    handed: handed::Handed,
    /// A hand-on failed in this run: the mark stays where it was, so the next start spools
    /// again what came after it.
    hand_failed: AtomicBool,
    /// The log as the daemon last wrote or checked it (see `recheck`).
    stamp: Mutex<Option<recheck::Stamp>>,
    /// Where the line the daemon wrote last starts (`u64::MAX`: not known), to read it back
    /// before each append (see `recheck`).
    tail_start: AtomicU64,
    /// Chains begun in this run (each break begins one): a re-verify that read the log while
    /// the daemon began a new chain has read the old one (see `reverify`).
    chains: AtomicU64,
    /// Breaks found and not yet taken by the caller.
    breaks: Mutex<Vec<Break>>,
    /// A break recorded whose new chain could not be started yet (e.g. a folder in the log's
    /// place): its event, so retries neither record it again nor lose it.
    unresolved: Mutex<Option<Box<Event>>>,
    /// Lines written and not yet taken for the history of events (see `lines`).
    written: Mutex<Vec<Written>>,
    /// Appends another node had in flight at a takeover, which may land late (see `late`);
    /// written into every anchor. Locked after `head` when both are.
    late: Mutex<Vec<InFlight>>,
    /// Late writes set aside and not yet told (see `take_set_aside`).
    set_aside: late::Untold,
    /// The log's place taken by what the daemon may not replace (see `blocked`), until an
    /// append or a check finds the log written again.
    blocked: Mutex<Option<Blocked>>,
}

fn genesis() -> Mark {
    Mark {
        seq: 0,
        hash: GENESIS.into(),
        len: Some(0),
    }
}

impl AuditLog {
    /// When the last event logged before this start happened (None: none). State changed
    /// after it lost its event to a crash between commit and append.
    pub fn last_at_open(&self) -> Option<&str> {
        self.last_at.as_deref()
    }

    /// Opens the log and checks it against the anchor. A torn last line (a crash mid-append)
    /// is cut off; any other difference breaks the chain (recorded, see the module doc).
    pub fn open(ws: &Workspace, anchors: Anchors) -> io::Result<AuditLog> {
        let handed_of = anchors.handed();
        let log = AuditLog {
            ws: ws.clone(),
            anchors,
            head: Mutex::new(genesis()),
            // Synced at the first flush even when it is right: a daemon killed before its
            // flush may have left it written but not yet on disk.
            anchor_stale: AtomicBool::new(true),
            gen: AtomicU64::new(0),
            last_at: None,
            handed: handed_of,
            hand_failed: AtomicBool::new(false),
            stamp: Mutex::default(),
            tail_start: AtomicU64::new(u64::MAX),
            chains: AtomicU64::new(0),
            breaks: Mutex::default(),
            unresolved: Mutex::default(),
            written: Mutex::default(),
            late: Mutex::default(),
            set_aside: late::Untold::default(),
            blocked: Mutex::default(),
        };
        let anchored = log.anchors.read()?;
        let never_anchored = anchored.is_none();
        let gen = anchored.as_ref().map_or(0, |a| a.gen);
        log.gen.store(gen, Ordering::Release);
        let (head, last_at) = match tail::read_tail(&log.ws) {
            Ok(tail) => match tail::judge(anchored.as_ref(), &tail) {
                Ok(mark) => {
                    log.tail_start.store(tail.start, Ordering::Release);
                    if let Some(anchored) = anchored.as_ref().filter(|_| log.anchors.shared()) {
                        *log.late.lock().unwrap_or_else(|e| e.into_inner()) =
                            late::kept_at_open(anchored, &mark);
                    }
                    (mark, tail.at)
                }
                Err(found) => match log.late_at_open(anchored.as_ref(), &tail)? {
                    Some((mark, at)) => (mark, at),
                    None => (log.break_chain(&found, anchored)?, None),
                },
            },
            Err(e) if ForeignFile::is(&e) => (log.break_chain(&e.to_string(), anchored)?, None),
            Err(e) => return Err(e),
        };
        // Edits before this start are found by the re-verify that every start runs (see
        // `reverify`); from here on the checks before each append find them too.
        if let Ok(file) = log.ws.open_append(&log.ws.events_path()) {
            *log.stamp.lock().unwrap_or_else(|e| e.into_inner()) = recheck::Stamp::of(&file).ok();
        }
        // A log served for the first time is anchored at once, as it was found: from here on
        // a change behind the daemon's back is tampering even if the daemon stops before its
        // first append (and that append, in the start-up scan, finds the file made).
        if never_anchored {
            log.anchors.write(&log.anchor_at(&head))?;
        }
        *log.head.lock().unwrap_or_else(|e| e.into_inner()) = head;
        Ok(AuditLog { last_at, ..log })
    }

    /// Breaks found since the last call (at open or while appending).
    pub fn take_breaks(&self) -> Vec<Break> {
        std::mem::take(&mut *self.breaks.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Appends events durably with one write and one sync; returns the last sequence number.
    /// A log changed behind the daemon breaks the chain first (the events then open the new
    /// one after `audit.broken`); an I/O error appends nothing and is returned, so the caller
    /// can refuse the state change the events describe.
    pub fn append_all(&self, events: &[Event]) -> io::Result<u64> {
        self.append_then(events, |_| true)
    }

    /// Appends as `append_all`, then, before any other append, hands the events on: `then`
    /// gets each line's hash (an id that a replay after a crash finds again) and says whether
    /// it kept them durably. Events handed on in log order so, and the mark of how far they
    /// were moves only over events kept: see `owed_then` for the others.
    pub fn append_then(
        &self,
        events: &[Event],
        then: impl FnOnce(&[String]) -> bool,
    ) -> io::Result<u64> {
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let file = match self.open_verified(&head) {
            Ok(file) => file,
            Err(Check::Io(e)) => return Err(e),
            Err(Check::Tampered(found)) => {
                let anchored = self.anchors.read().ok().flatten();
                *head = self.break_chain(&found, anchored)?;
                match self.open_verified(&head) {
                    Ok(file) => file,
                    Err(Check::Io(e)) => return Err(e),
                    Err(Check::Tampered(found)) => return Err(io::Error::other(found)),
                }
            }
        };
        let (next, hashes) = self.write_lines(file, &head, events)?;
        *head = next;
        self.unblocked();
        let kept = then(&hashes);
        self.hand_on(&head, kept);
        Ok(head.seq)
    }

    /// The events logged but not handed on before a crash (or by the node that served the
    /// workspace before), read back from the log and proven by its chain; `then` says whether
    /// it kept them. Called once at start (or takeover), before appends.
    ///
    /// A mark that is damaged (see `handed`) is never read as "nothing owed": the events after
    /// the last one `proven` says reached the outbox are handed on again (the outbox drops
    /// those it still holds, by id), and the damage is returned for the caller to raise.
    pub fn owed_then(
        &self,
        proven: &dyn Fn(&str) -> bool,
        then: impl FnOnce(Vec<(String, Event)>) -> bool,
    ) -> io::Result<Option<handed::Damaged>> {
        let head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        let open = || self.ws.open_append(&self.ws.events_path());
        let (owed, damage) = match self.handed.read() {
            Ok(Some(from)) if from == *head => (Vec::new(), None),
            Ok(None) => (Vec::new(), None),
            Ok(Some(from)) => match handed::owed(&mut open()?, &from, &head)? {
                Some(owed) => (owed, None),
                // The log was replaced since (a chain broken at this open): its events were
                // never the mark's, and nothing unproven is sent.
                None if self.chains.load(Ordering::Acquire) > 0 => {
                    tracing::warn!(workspace = %self.ws.name, "cannot tell which logged events reached the outbox (the log changed since); none are sent again");
                    (Vec::new(), None)
                }
                None => {
                    let why = format!(
                        "it names event {} ending at byte {}, which this log does not hold (it ends at event {})",
                        from.seq,
                        from.len.unwrap_or(0),
                        head.seq
                    );
                    let damage = handed::Damaged {
                        place: self.handed.place(),
                        why,
                    };
                    (self.owed_since_proven(&head, proven)?, Some(damage))
                }
            },
            Err(damage) => (self.owed_since_proven(&head, proven)?, Some(damage)),
        };
        if let Some(damage) = &damage {
            let kept = self.handed.keep_damaged();
            tracing::error!(workspace = %self.ws.name, error = %damage, kept = ?kept, resent = owed.len(),
                "damaged mark of which events reached the outbox: not trusted; the events after the last one the outbox holds are handed on again");
        }
        let kept = owed.is_empty() || then(owed);
        self.hand_on(&head, kept);
        Ok(damage)
    }

    /// `handed::since_proven` of this log up to `head` (nothing if it does not chain: the
    /// re-verify raises that).
    fn owed_since_proven(
        &self,
        head: &Mark,
        proven: &dyn Fn(&str) -> bool,
    ) -> io::Result<Vec<(String, Event)>> {
        let mut file = self.ws.open_append(&self.ws.events_path())?;
        Ok(handed::since_proven(&mut file, head, proven)?.unwrap_or_default())
    }

    /// Checks, between appends, that the log is still what the daemon wrote (as an append
    /// checks it first); one changed in place breaks the chain now (recorded as an append
    /// would), not at the next append.
    pub fn recheck(&self) -> io::Result<()> {
        let mut head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        match self.open_verified(&head) {
            Ok(_) => {
                self.unblocked();
                Ok(())
            }
            Err(Check::Io(e)) => Err(e),
            Err(Check::Tampered(found)) => {
                let anchored = self.anchors.read().ok().flatten();
                *head = self.break_chain(&found, anchored)?;
                Ok(())
            }
        }
    }

    /// The open log, if it is still exactly what the daemon wrote: its length (`open_checked`),
    /// then, if its inode or change time moved since the daemon's own last write or check,
    /// its whole chain, else its last line read back (see `recheck`). Called with the head's
    /// lock held, before every append.
    fn open_verified(&self, head: &Mark) -> Result<std::fs::File, Check> {
        let (mut file, stamp) = self.open_checked(head)?;
        let mut known = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if *known == Some(stamp) {
            let start = self.tail_start.load(Ordering::Acquire);
            let start = (start != u64::MAX).then_some(start);
            return match recheck::tail_holds(&file, start, head) {
                Ok(true) => Ok(file),
                Ok(false) => Err(Check::Tampered(format!(
                    "the last event ({}) was changed behind the daemon: it is not the line the daemon wrote there",
                    head.seq
                ))),
                Err(e) => Err(Check::Io(e)),
            };
        }
        match recheck::chain_problem(&mut file, head) {
            Ok(None) => {
                *known = Some(stamp);
                Ok(file)
            }
            Ok(Some(found)) => Err(Check::Tampered(found)),
            Err(e) => Err(Check::Io(e)),
        }
    }

    fn hand_on(&self, head: &Mark, kept: bool) {
        if !kept {
            self.hand_failed.store(true, Ordering::Release);
        }
        if self.hand_failed.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = self.handed.write(head) {
            // Only costs a second sending of these events after a crash.
            tracing::warn!(workspace = %self.ws.name, error = %e, "cannot note which events reached the outbox");
        }
    }

    /// The open log, if it is still the daemon's file and as long as the daemon wrote it
    /// (its content is checked by `open_verified`), with its stamp (from the same look at it).
    fn open_checked(&self, head: &Mark) -> Result<(std::fs::File, recheck::Stamp), Check> {
        let file = match self.ws.open_append(&self.ws.events_path()) {
            Ok(f) => f,
            Err(e) if ForeignFile::is(&e) => return Err(Check::Tampered(e.to_string())),
            Err(e) => return Err(Check::Io(e)),
        };
        let stamp = recheck::Stamp::of(&file).map_err(Check::Io)?;
        let len = stamp.len;
        // A fenced-out node's late append past the head is set aside (at most once: it is
        // then no longer in flight), and the log looked at again.
        if head.len.is_some_and(|l| len > l)
            && self.set_aside_late(&file, head, len).map_err(Check::Io)?
        {
            return self.open_checked(head);
        }
        if Some(len) != head.len {
            return Err(Check::Tampered(format!(
                "the log is {len} bytes but the daemon's last event ends at byte {}: it was changed behind the daemon",
                head.len.unwrap_or(0)
            )));
        }
        Ok((file, stamp))
    }

    fn write_lines(
        &self,
        file: std::fs::File,
        head: &Mark,
        events: &[Event],
    ) -> io::Result<(Mark, Vec<String>)> {
        let (text, next, hashes) = chain(head, events)?;
        // The anchor first: a crash from here on leaves the log at `before` or at `after`.
        self.anchors.write(&Anchor {
            after: next.clone(),
            before: Some(head.clone()),
            gen: self.next_gen(),
            late: self.late_now(),
        })?;
        // In a cluster the anchor's write was fenced by the database; the append on the share
        // is fenced here, right before it (a node paused in between past its lease would
        // otherwise append after its successor's events, and the successor break the chain).
        self.ws.may_write()?;
        // A pause can still come between this check and the write: see `late`.
        crate::workspace::fault::stall_audit_write();
        // The group's sync shares this handle (no second descriptor of it).
        let file = std::sync::Arc::new(file);
        // The log as this write leaves it, looked at before the sync (which changes neither
        // its length nor its change time): an edit made while the sync runs moves the change
        // time past it, so the next append reads the whole chain.
        let mut written = None;
        if let Err(e) = (&*file).write_all(text.as_bytes()).and_then(|()| {
            written = recheck::Stamp::of(&file).ok();
            // Synced with whatever else is being committed now (other workspaces' appends,
            // store changes): one syncfs may cover them all.
            if let Some(e) = crate::workspace::fault::stalled_audit_sync() {
                return Err(e);
            }
            let on = self.ws.root.clone();
            group::sync(group::Request::audit(on, vec![file.clone()]))
        }) {
            // Disk full or I/O error: take back a partial line so the chain stays whole, if
            // this node may still write and the log is still only what it left. One that lost
            // its lease during a long sync (a share that stopped answering), or was paused
            // past it between the check and the cut, must not cut the log: its successor may
            // have appended since, and accepts the tail at either end the anchor names, torn
            // lines cut.
            let at = head.len.unwrap_or(0);
            if take_back::take_back(&file, at, text.as_bytes(), || self.ws.may_write().is_ok()) {
                let _ = self.anchors.write(&self.anchor_at(head));
            }
            return Err(e);
        }
        // Checked again once written: a node paused since its check past its lease wrote
        // late, maybe after its successor's events. It leaves the log as it is and logged
        // nothing (nothing is handed on); the successor sets the lines aside (`late`).
        if let Err(refused) = self.ws.may_write() {
            self.wrote_late(head, &next, &text, &refused);
            return Err(refused);
        }
        self.anchor_stale.store(true, Ordering::Release);
        // Checked before this write (`open_verified`): what it changed is the daemon's.
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = written;
        if let Some(last) = text
            .strip_suffix('\n')
            .map(|t| t.rfind('\n').map_or(0, |i| i + 1))
        {
            let start = head.len.unwrap_or(0) + last as u64;
            self.tail_start.store(start, Ordering::Release);
        }
        self.note_written(head, &text, events);
        Ok((next, hashes))
    }

    /// Notes where each line just written sits, for the history (see `lines`).
    fn note_written(&self, head: &Mark, text: &str, events: &[Event]) {
        let mut offset = head.len.unwrap_or(0);
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let lines = text.split_terminator('\n').zip(events);
        for (i, (line, event)) in lines.enumerate() {
            written.push(Written {
                at: event.at.clone(),
                kind: Some(event.kind),
                seq: head.seq + 1 + i as u64,
                offset,
                len: line.len() as u32,
                proof: lines::proof_of(line.as_bytes()),
            });
            offset += line.len() as u64 + 1;
        }
    }

    /// Records a log found changed, keeps a copy as evidence, and starts a new chain whose
    /// first event is `audit.broken`. Returns the new head.
    fn break_chain(&self, found: &str, anchored: Option<Anchor>) -> io::Result<Mark> {
        // A node whose lease is gone finds the log "changed" by its successor: that is no
        // tampering, and it must neither record it nor set the log aside nor start a chain.
        self.ws.may_write()?;
        let event = self.record_break(found, anchored)?;
        // A folder or something else that cannot be removed in the log's place: the finding is
        // recorded and raised, and the change that wanted to be logged is refused.
        let path = self.ws.events_path();
        let file = match self
            .ws
            .remove(&path)
            .and_then(|()| self.ws.open_append(&path))
        {
            Ok(file) => file,
            Err(e) => return Err(self.blocked_by(&path, e)),
        };
        self.chains.fetch_add(1, Ordering::AcqRel);
        let (head, _) = self.write_lines(file, &genesis(), std::slice::from_ref(&event))?;
        *self.unresolved.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.unblocked();
        self.breaks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Break {
                event,
                logged: true,
            });
        Ok(head)
    }

    /// Why the log cannot be written in its place, while that is so (see `blocked`).
    pub fn blocked(&self) -> Option<Blocked> {
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `e`, the failure to begin the log anew at `path`: noted (and said once) if it is a
    /// blocking a person must clear, then returned with the message that says so.
    fn blocked_by(&self, path: &std::path::Path, e: io::Error) -> io::Error {
        let Some(blocked) = Blocked::of(&self.ws, path, &e) else {
            return e;
        };
        let mut now = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if now.as_ref() != Some(&blocked) {
            tracing::error!(workspace = %self.ws.name, file = %blocked.file, error = %e, "{blocked}");
            *now = Some(blocked.clone());
        }
        blocked.into_io()
    }

    fn unblocked(&self) {
        let mut now = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(was) = now.take() {
            tracing::info!(workspace = %self.ws.name, file = %was.file, "the audit log is written in its place again");
        }
    }

    /// Keeps the evidence and records the finding in the history, once per finding (a log
    /// that stays broken is retried, not recorded again); the `audit.broken` event to open
    /// the new chain with.
    fn record_break(&self, found: &str, anchored: Option<Anchor>) -> io::Result<Event> {
        let mut unresolved = self.unresolved.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(event) = unresolved.as_ref().filter(|e| e.data["found"] == found) {
            return Ok((**event).clone());
        }
        let path = self.ws.events_path();
        let evidence = match self.ws.read(&path, EVIDENCE_LIMIT) {
            Ok(Some(bytes)) => Some(self.anchors.keep_evidence("events.jsonl", &bytes)?),
            Ok(None) | Err(ReadError::NotRegular) => None,
            Err(ReadError::TooLarge { size, .. }) => {
                let note = format!("the log was {size} bytes, too large to copy");
                Some(self.anchors.keep_evidence("events.txt", note.as_bytes())?)
            }
            Err(ReadError::Io(e)) => return Err(e),
        };
        let evidence = evidence.map(|p| p.display().to_string());
        tracing::error!(workspace = %self.ws.name, found, evidence = evidence.as_deref().unwrap_or(""), "audit log tampered with; starting a new chain");
        self.anchors.record(&anchor::Entry {
            at: now_rfc3339(),
            kind: "tampered".into(),
            text: format!("audit log: {found}"),
            anchored: anchored.as_ref().map(|a| a.after.clone()),
            evidence: evidence.clone(),
        })?;
        let data = json!({
            "found": found,
            "anchored_seq": anchored.as_ref().map(|a| a.after.seq),
            "anchored_hash": anchored.as_ref().map(|a| a.after.hash.clone()),
            "evidence": evidence,
        });
        let event = Event::new(EventType::AuditBroken, &self.ws.name, None, data);
        *unresolved = Some(Box::new(event.clone()));
        self.breaks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Break {
                event: event.clone(),
                logged: false,
            });
        Ok(event)
    }

    /// The anchor to flush to the ledger if the head moved since the last flush (about once
    /// a second, and at shutdown), or `None`. Taken under the head's lock, so its generation
    /// orders it with the anchors appends write.
    pub fn anchor_to_flush(&self) -> Option<Anchor> {
        // Asked of every workspace every second: a plain read first, since a swap writes the
        // flag's cache line even when it was clear.
        if !self.anchor_stale.load(Ordering::Acquire)
            || !self.anchor_stale.swap(false, Ordering::AcqRel)
        {
            return None;
        }
        let head = self.head.lock().unwrap_or_else(|e| e.into_inner());
        Some(self.anchor_at(&head))
    }

    /// The ledger could not take the anchor: flush it again next time.
    pub fn flush_failed(&self) {
        self.anchor_stale.store(true, Ordering::Release);
    }

    /// The anchor of a log at rest at `head` (no append in flight), with a new generation.
    fn anchor_at(&self, head: &Mark) -> Anchor {
        Anchor {
            after: head.clone(),
            before: None,
            gen: self.next_gen(),
            late: self.late_now(),
        }
    }

    /// The appends in flight at a takeover not yet set aside (see `late`).
    fn late_now(&self) -> Vec<InFlight> {
        self.late.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// At open, a log longer than the anchor's either end by exactly an append in flight at
    /// a takeover (the anchor's own, or one it carries) has it set aside: the head to go on
    /// from and the last event's time, or `None` (the caller breaks the chain).
    fn late_at_open(
        &self,
        anchored: Option<&Anchor>,
        tail: &tail::Tail,
    ) -> io::Result<Option<(Mark, Option<String>)>> {
        let Some(anchored) = anchored.filter(|_| self.anchors.shared()) else {
            return Ok(None);
        };
        let ends = std::iter::once(&anchored.after).chain(anchored.before.as_ref());
        for end in ends.filter(|m| m.len.is_some_and(|l| l < tail.len)) {
            *self.late.lock().unwrap_or_else(|e| e.into_inner()) =
                late::kept_at_open(anchored, end);
            let file = self.ws.open_append(&self.ws.events_path())?;
            if !self.set_aside_late(&file, end, tail.len)? {
                continue;
            }
            let tail = tail::read_tail(&self.ws)?;
            let now = self.anchors.read()?;
            return Ok(match tail::judge(now.as_ref(), &tail) {
                Ok(mark) => {
                    self.tail_start.store(tail.start, Ordering::Release);
                    Some((mark, tail.at))
                }
                Err(_) => None,
            });
        }
        self.late.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(None)
    }

    fn next_gen(&self) -> u64 {
        self.gen.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// Why a log cannot be appended to as it is.
enum Check {
    /// It is not what the daemon wrote.
    Tampered(String),
    Io(io::Error),
}

/// The lines for `events` after `head`, the head they lead to, and each line's hash.
fn chain(head: &Mark, events: &[Event]) -> io::Result<(String, Mark, Vec<String>)> {
    let mut next = head.clone();
    let mut text = String::new();
    let mut hashes = Vec::with_capacity(events.len());
    for event in events {
        let seq = next.seq + 1;
        let line = serde_json::to_string(&Line {
            seq,
            prev: &next.hash,
            event,
        })?;
        next.seq = seq;
        next.hash = sha256_hex(line.as_bytes());
        hashes.push(next.hash.clone());
        text.push_str(&line);
        text.push('\n');
    }
    next.len = Some(head.len.unwrap_or(0) + text.len() as u64);
    Ok((text, next, hashes))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Overwrites a small JSON record in place by one write, padded with spaces (which parsers
/// skip) to at least `size` bytes, so the file never needs truncating and a reader sees the
/// old record or the new one whole (a write within one page). Not synced: see the callers.
fn overwrite_record(path: &std::path::Path, value: &impl Serialize, size: usize) -> io::Result<()> {
    let mut record = serde_json::to_vec(value)?;
    record.resize(size.max(record.len()), b' ');
    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
    };
    // The folder is made only when missing: a `mkdir` of it for every record (two a handoff)
    // took its parent's lock each time, and a burst's workers queued on it.
    let file = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            open()?
        }
        other => other?,
    };
    std::os::unix::fs::FileExt::write_all_at(&file, &record, 0)
}
