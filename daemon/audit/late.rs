//! A late write: a node passed its fence check right before an audit append (see
//! `crate::workspace::fence`), was paused there (SIGSTOP, a frozen VM) past its lease, and
//! wrote when it woke, after the events of the node that took the workspace over. A shared
//! folder cannot refuse a write by epoch, so the late bytes can land; what matters is that
//! they are told from tampering and cost no one's events:
//!
//! - the node that wrote late checks its fence again right after its write; found gone, it
//!   touches the log no more (its successor may have appended since: it never cuts the log),
//!   keeps what it wrote as evidence in its data_dir, and answers its caller that the events
//!   were not logged (so they are not handed on to webhooks or mail);
//! - the node that takes a workspace over and finds the log at the `before` end of the anchor
//!   (an append anchored but not written) keeps that append's two ends in every anchor it
//!   writes from then on (`Anchor::late`, in the cluster's database, out of agents' reach);
//! - bytes found past the head are set aside as a late write only if they are exactly that
//!   append: lines chaining from its `before` whose last line hashes to its `after` and as
//!   long as it. Those bytes are the fenced-out node's own to the last one (an agent that
//!   could write them would be writing what the holder anchored); they are kept as evidence,
//!   recorded in the history as `late_write` (not tampering), and cut from the log, whose
//!   chain goes on. Anything else past the head is tampering, as before.
//!
//! The successor logged the state those events described itself, if it was committed (see
//! `crate::app::runtime::recover`), so nothing is lost by setting them aside.

use super::anchor::{Entry, InFlight, LATE_WRITE};
use super::{sha256_hex, AuditLog, Chained, Mark};
use crate::clock::now_rfc3339;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A late write set aside, to be told (an `audit.late_write` event and the recoveries
/// metric) by the daemon serving the workspace: `AuditLog::take_set_aside`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// What was set aside, relative to the workspace (`.baton/events.jsonl`).
    pub file: String,
    pub text: String,
    pub evidence: Option<String>,
}

/// Late writes set aside in this process and not yet taken, over all workspaces: the
/// housekeeping looks for them only when there are some.
static UNTOLD: AtomicUsize = AtomicUsize::new(0);

/// Whether some workspace's log set a late write aside that was not yet taken.
pub fn any_set_aside() -> bool {
    UNTOLD.load(Ordering::Acquire) > 0
}

/// One log's late writes set aside and not yet taken (counted in `UNTOLD` until taken or
/// dropped with the log).
#[derive(Debug, Default)]
pub(super) struct Untold(std::sync::Mutex<Vec<SetAside>>);

impl Untold {
    fn push(&self, found: SetAside) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(found);
        UNTOLD.fetch_add(1, Ordering::AcqRel);
    }

    fn take(&self) -> Vec<SetAside> {
        let taken = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        UNTOLD.fetch_sub(taken.len(), Ordering::AcqRel);
        taken
    }
}

impl Drop for Untold {
    fn drop(&mut self) {
        self.take();
    }
}

/// In-flight appends kept at most: each takeover that found one adds it; the oldest go first
/// (a node paused through as many takeovers is long gone).
const KEPT: usize = 8;

/// Whether `bytes` are exactly the append `late` had in flight (see the module doc).
pub(super) fn is_in_flight(bytes: &[u8], late: &InFlight) -> bool {
    let (Some(from), Some(to)) = (late.before.len, late.after.len) else {
        return false;
    };
    if to.checked_sub(from) != Some(bytes.len() as u64) || bytes.last() != Some(&b'\n') {
        return false;
    }
    let (mut prev, mut seq) = (late.before.hash.clone(), late.before.seq);
    for line in bytes[..bytes.len() - 1].split(|b| *b == b'\n') {
        let Ok(chained) = serde_json::from_slice::<Chained>(line) else {
            return false;
        };
        if chained.prev != prev || chained.seq != seq + 1 {
            return false;
        }
        prev = sha256_hex(line);
        seq = chained.seq;
    }
    prev == late.after.hash && seq == late.after.seq
}

/// The in-flight appends to keep once the log was found at `at` under `anchored`: those
/// already kept, and the anchor's own append if it was not written (the log is at its
/// `before` end, not at its `after`).
pub(super) fn kept_at_open(anchored: &super::Anchor, at: &Mark) -> Vec<InFlight> {
    let mut late = anchored.late.clone();
    let unwritten = anchored
        .before
        .as_ref()
        .filter(|before| before.hash == at.hash && anchored.after.hash != at.hash);
    if let Some(before) = unwritten {
        late.push(InFlight {
            before: before.clone(),
            after: anchored.after.clone(),
            found_at: now_rfc3339(),
        });
    }
    let over = late.len().saturating_sub(KEPT);
    late.drain(..over);
    late
}

impl AuditLog {
    /// Sets aside the bytes of `file` past `head` (the log is `len` bytes) if they are
    /// exactly an in-flight append of a node that lost the lease; `true` if it did (the log
    /// then ends at `head` again). Refused (`false`) when this node may not write itself.
    pub(super) fn set_aside_late(
        &self,
        file: &std::fs::File,
        head: &Mark,
        len: u64,
    ) -> io::Result<bool> {
        let from = head.len.unwrap_or(0);
        let mut late = self.late.lock().unwrap_or_else(|e| e.into_inner());
        if late.is_empty() || len <= from || self.ws.may_write().is_err() {
            return Ok(false);
        }
        // Read only as much as some in-flight append would be.
        let Some(size) = late
            .iter()
            .filter_map(|l| Some(l.after.len? - l.before.len?))
            .find(|size| *size == len - from)
        else {
            return Ok(false);
        };
        let mut bytes = vec![0u8; size as usize];
        file.read_exact_at(&mut bytes, from)?;
        let Some(i) = late.iter().position(|l| is_in_flight(&bytes, l)) else {
            return Ok(false);
        };
        // Cut only what was read and proven: an agent's append made since is not this
        // node's to drop, and is found as tampering at the next check.
        if file.metadata()?.len() != len {
            return Ok(false);
        }
        let found = late[i].clone();
        let evidence = self.anchors.keep_evidence("late-write.jsonl", &bytes)?;
        let text = format!(
            "audit log: {size} bytes at {from}..{len} were an append anchored before a takeover (events {}..{} after event {}, found missing at {}) and written late by the node that had lost the lease; set aside, the chain goes on from event {}",
            found.before.seq + 1,
            found.after.seq,
            found.before.seq,
            found.found_at,
            head.seq
        );
        self.anchors.record(&Entry {
            at: now_rfc3339(),
            kind: LATE_WRITE.into(),
            text: text.clone(),
            anchored: Some(head.clone()),
            evidence: Some(evidence.display().to_string()),
        })?;
        file.set_len(from)?;
        late.remove(i);
        drop(late);
        self.anchors.write(&self.anchor_at(head))?;
        tracing::warn!(workspace = %self.ws.name, evidence = %evidence.display(), "{text}");
        self.set_aside.push(SetAside {
            file: ".baton/events.jsonl".into(),
            text,
            evidence: Some(evidence.display().to_string()),
        });
        Ok(true)
    }

    /// The late writes set aside since the last call, for the caller to tell.
    pub fn take_set_aside(&self) -> Vec<SetAside> {
        self.set_aside.take()
    }

    /// This node's append of `text` after `head` landed though its lease was gone by then
    /// (its fence, checked right after the write, refused): it may sit after a successor's
    /// events, so the log is left as it is, and what was written is kept as evidence for
    /// the successor's set-aside to be matched with.
    pub(super) fn wrote_late(&self, head: &Mark, next: &Mark, text: &str, refused: &io::Error) {
        let evidence = self
            .anchors
            .keep_evidence("late-write-made.jsonl", text.as_bytes());
        let evidence = evidence.as_ref().map(|p| p.display().to_string());
        let note = format!(
            "audit log: this node appended events {}..{} after event {} ({} bytes, last line sha256 {}) past its lease ({refused}); the log was left as it is: the node serving the workspace sets them aside",
            head.seq + 1,
            next.seq,
            head.seq,
            text.len(),
            next.hash
        );
        let recorded = self.anchors.record(&Entry {
            at: now_rfc3339(),
            kind: LATE_WRITE.into(),
            text: note.clone(),
            anchored: Some(next.clone()),
            evidence: evidence.clone().ok(),
        });
        tracing::error!(workspace = %self.ws.name, evidence = ?evidence, recorded = ?recorded.err(), "{note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::GENESIS;

    fn lines(from: &Mark, n: u64, pad: &str) -> (Vec<u8>, Mark) {
        let (mut prev, mut text) = (from.hash.clone(), Vec::new());
        for seq in from.seq + 1..=from.seq + n {
            let line =
                format!("{{\"seq\":{seq},\"prev\":\"{prev}\",\"type\":\"x\",\"p\":\"{pad}\"}}");
            prev = sha256_hex(line.as_bytes());
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        let to = Mark {
            seq: from.seq + n,
            hash: prev,
            len: Some(from.len.unwrap() + text.len() as u64),
        };
        (text, to)
    }

    #[test]
    fn only_the_exact_bytes_of_the_append_in_flight_are_a_late_write() {
        let start = Mark {
            seq: 0,
            hash: GENESIS.into(),
            len: Some(0),
        };
        let (first, before) = lines(&start, 3, "a");
        let (text, after) = lines(&before, 2, "late");
        let late = InFlight {
            before: before.clone(),
            after,
            found_at: String::new(),
        };
        assert!(is_in_flight(&text, &late));
        // Same length, same first link, other content: an agent's forgery.
        let (forged, _) = lines(&before, 2, "lat3");
        assert_eq!(forged.len(), text.len());
        assert!(!is_in_flight(&forged, &late));
        // The late lines with anything more, or less.
        assert!(!is_in_flight(&[text.as_slice(), b"{}\n"].concat(), &late));
        assert!(!is_in_flight(&text[..text.len() - 1], &late));
        // Lines of the log itself (chaining from its start) are no late write.
        assert!(!is_in_flight(&first, &late));
    }

    #[test]
    fn a_takeover_keeps_the_append_it_did_not_find_and_only_that() {
        let mark = |seq: u64| Mark {
            seq,
            hash: format!("h{seq}"),
            len: Some(seq * 10),
        };
        let anchored = super::super::Anchor {
            after: mark(5),
            before: Some(mark(4)),
            gen: 1,
            late: Vec::new(),
        };
        let kept = kept_at_open(&anchored, &mark(4));
        assert_eq!(kept.len(), 1);
        assert_eq!((kept[0].before.seq, kept[0].after.seq), (4, 5));
        assert!(kept_at_open(&anchored, &mark(5)).is_empty(), "written");
        let full = super::super::Anchor {
            late: vec![kept[0].clone(); KEPT],
            ..anchored
        };
        assert_eq!(kept_at_open(&full, &mark(4)).len(), KEPT);
    }
}
