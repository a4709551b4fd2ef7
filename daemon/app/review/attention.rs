//! Attention signals: what each reviewer opened of each pending handoff's current revision
//! (its page or API detail, and which artifacts and diffs), recorded as the daemon serves
//! those reads, so that a decision can say what its person had open (`decision.attention`)
//! and a route can hold an approval back until they opened what changed and spent
//! `min_review_s` with it (`refusal`, called by `Cx::approval_refused`, the one rule every
//! channel goes through).
//!
//! Not `views::seen`: that marks, per reviewer, which revision the queue last showed them, and
//! a transition may not read a view; this is the transitions' own record, beside `away`.
//!
//! Kept in memory, and in `data_dir/attention.jsonl`, one line per read appended without an
//! fsync: a restart (even a killed process) keeps what was read, only a power cut can lose the
//! last reads, and losing them refuses an approval until the reviewer opens the files again,
//! never grants one. A look costs a map update and one small `write`; the file is rewritten
//! whole at start and when dead lines outnumber the live ones. A decided handoff's looks are
//! forgotten (its decision carries them), so the record holds the pending handoffs only, and
//! at most `MAX_LOOKS` of them (the oldest first views go first). One node's record: in a
//! cluster, reads of a handoff are served by the node that holds its workspace.

use crate::app::model::DecideError;
use crate::app::review::Cx;
use crate::app::state::Record;
use crate::auth::Actor;
use crate::contract::attention::Attention;
use crate::contract::{Decision, Outcome};
use crate::metrics::RouteLabel;
use crate::routing::Route;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Reviewer looks remembered across all pending handoffs; past it, the oldest first views
/// are forgotten (an approval on a route that asks for attention then needs a fresh look).
const MAX_LOOKS: usize = 100_000;

/// What a reader opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened<'p> {
    /// The handoff's page or its API detail.
    Page,
    /// An artifact shown (preview), downloaded or shown as an image.
    Artifact(&'p str),
    /// An artifact's diff against an earlier version.
    Diff(&'p str),
}

/// One reviewer's reads of one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Look {
    revision: u32,
    /// Unix milliseconds of the first read of this revision.
    first_ms: u64,
    pages: u32,
    /// Artifact path -> whether its diff was opened.
    opened: BTreeMap<String, bool>,
}

/// A line of the file: a read, or a handoff decided (`forget`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    who: Option<String>,
    #[serde(default)]
    rev: u32,
    #[serde(default)]
    at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    diff: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    forget: bool,
}

/// Handoff key -> reviewer -> their look.
type Table = HashMap<String, HashMap<String, Look>>;

struct Kept {
    table: Table,
    looks: usize,
    /// Lines in the file, to rewrite it when most are dead.
    lines: usize,
    file: Option<File>,
}

pub(in crate::app) struct Attentions {
    path: PathBuf,
    kept: Mutex<Kept>,
}

impl Attentions {
    /// The record in `data_dir` (missing or unreadable lines: nothing was read), rewritten
    /// without its dead lines.
    pub fn open(data_dir: &Path) -> Attentions {
        let path = data_dir.join("attention.jsonl");
        let mut table = Table::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines() {
                // A line cut by a crash is skipped: it only forgets one read.
                if let Ok(l) = serde_json::from_str::<Line>(line) {
                    replay(&mut table, l);
                }
            }
        }
        let looks = table.values().map(HashMap::len).sum();
        let a = Attentions {
            path,
            kept: Mutex::new(Kept {
                table,
                looks,
                lines: 0,
                file: None,
            }),
        };
        a.compact(&mut a.lock());
        a
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that `who` opened `read` of `key` at `revision`, now.
    pub fn note(&self, who: &str, key: &str, revision: u32, read: Opened) {
        let at = crate::clock::now_ms();
        let (path, diff) = match read {
            Opened::Page => (None, false),
            Opened::Artifact(p) => (Some(p.to_string()), false),
            Opened::Diff(p) => (Some(p.to_string()), true),
        };
        let line = Line {
            key: key.to_string(),
            who: Some(who.to_string()),
            rev: revision,
            at,
            path,
            diff,
            forget: false,
        };
        let mut kept = self.lock();
        let before = kept.table.get(key).map_or(0, HashMap::len);
        replay(&mut kept.table, line.clone());
        let added = kept.table.get(key).map_or(0, HashMap::len) - before;
        kept.looks += added;
        if kept.looks > MAX_LOOKS {
            forget_oldest(&mut kept);
            self.compact(&mut kept);
            return;
        }
        self.append(&mut kept, &line);
    }

    /// Forgets every look at `key`: it is decided, and its decision carries them.
    pub fn forget(&self, key: &str) {
        let mut kept = self.lock();
        let Some(gone) = kept.table.remove(key) else {
            return;
        };
        kept.looks -= gone.len();
        let line = Line {
            key: key.to_string(),
            who: None,
            rev: 0,
            at: 0,
            path: None,
            diff: false,
            forget: true,
        };
        self.append(&mut kept, &line);
    }

    /// What `who` had opened of `rec`'s current revision, at `now_ms`.
    pub fn signals(&self, who: &str, rec: &Record, now_ms: u64) -> Attention {
        let look = self.look(who, &rec.meta.key, rec.meta.revision);
        let changed = changed_artifacts(rec);
        let look = look.unwrap_or_default();
        let unopened = changed
            .iter()
            .filter(|p| !look.opened.contains_key(*p))
            .cloned()
            .collect();
        let viewed = look.first_ms > 0;
        Attention {
            first_view_at: viewed.then(|| rfc3339_ms(look.first_ms)),
            seconds: viewed.then(|| now_ms.saturating_sub(look.first_ms) / 1000),
            page_views: look.pages,
            diffs: look
                .opened
                .iter()
                .filter(|(_, d)| **d)
                .map(|(p, _)| p.clone())
                .collect(),
            opened: look.opened.into_keys().collect(),
            changed,
            unopened,
        }
    }

    fn look(&self, who: &str, key: &str, revision: u32) -> Option<Look> {
        let kept = self.lock();
        let look = kept.table.get(key)?.get(who)?;
        (look.revision == revision).then(|| look.clone())
    }

    fn append(&self, kept: &mut Kept, line: &Line) {
        if kept.lines > 2 * kept.looks + 10_000 {
            self.compact(kept);
            return;
        }
        let mut bytes = serde_json::to_vec(line).expect("a line serializes");
        bytes.push(b'\n');
        let written = match &mut kept.file {
            Some(f) => f.write_all(&bytes),
            None => Err(std::io::Error::other("the attention record is not open")),
        };
        match written {
            Ok(()) => kept.lines += 1,
            // The read is kept in memory; a restart would forget it (a warning, not a page).
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot record what a reviewer opened")
            }
        }
    }

    /// Rewrites the file with the live looks only, and reopens it for appends.
    fn compact(&self, kept: &mut Kept) {
        let mut out = Vec::new();
        for (key, looks) in &kept.table {
            for (who, look) in looks {
                for line in lines_of(key, who, look) {
                    out.extend(serde_json::to_vec(&line).expect("a line serializes"));
                    out.push(b'\n');
                }
            }
        }
        let lines = out.iter().filter(|b| **b == b'\n').count();
        let kind = crate::workspace::fsync::Kind::Other;
        let reopened = crate::workspace::write_atomic(&self.path, &out, kind).and_then(|()| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&self.path)
        });
        match reopened {
            Ok(f) => {
                kept.file = Some(f);
                kept.lines = lines;
            }
            Err(e) => {
                kept.file = None;
                tracing::warn!(file = %self.path.display(), error = %e, "cannot save what reviewers opened; kept in memory only");
            }
        }
    }
}

/// Applies one line to the table: a later revision replaces an earlier look.
fn replay(table: &mut Table, l: Line) {
    if l.forget {
        table.remove(&l.key);
        return;
    }
    let Some(who) = l.who else { return };
    let look = table.entry(l.key).or_default().entry(who).or_default();
    if l.rev < look.revision {
        return;
    }
    if l.rev > look.revision || look.first_ms == 0 {
        *look = Look {
            revision: l.rev,
            first_ms: l.at.max(1),
            ..Look::default()
        };
    }
    match l.path {
        None => look.pages += 1,
        Some(path) => {
            let diff = look.opened.entry(path).or_default();
            *diff |= l.diff;
        }
    }
}

/// The lines that replay to `look`.
fn lines_of(key: &str, who: &str, look: &Look) -> Vec<Line> {
    let line = |path: Option<String>, diff| Line {
        key: key.to_string(),
        who: Some(who.to_string()),
        rev: look.revision,
        at: look.first_ms,
        path,
        diff,
        forget: false,
    };
    let pages = (0..look.pages).map(|_| line(None, false));
    let opened = look.opened.iter().map(|(p, d)| line(Some(p.clone()), *d));
    let mut lines: Vec<Line> = pages.chain(opened).collect();
    if lines.is_empty() {
        lines.push(line(None, false));
    }
    lines
}

fn forget_oldest(kept: &mut Kept) {
    let mut firsts: Vec<u64> = kept
        .table
        .values()
        .flat_map(|looks| looks.values().map(|l| l.first_ms))
        .collect();
    firsts.sort_unstable();
    // A tenth at once, so a full record is not sorted again at every read.
    let cut = firsts[firsts.len() / 10];
    for looks in kept.table.values_mut() {
        looks.retain(|_, l| l.first_ms > cut);
    }
    kept.table.retain(|_, looks| !looks.is_empty());
    kept.looks = kept.table.values().map(HashMap::len).sum();
}

/// The artifacts `rec`'s current revision changed: those added, or with other content than
/// in the revision before; every artifact of a first revision (and of a revision recorded
/// before baton kept the previous one's artifacts).
pub(in crate::app) fn changed_artifacts(rec: &Record) -> Vec<String> {
    let previous = rec.meta.previous_artifacts.as_deref();
    let mut changed: Vec<String> = rec
        .meta
        .artifacts
        .iter()
        .filter(|now| {
            previous.is_none_or(|before| {
                !before
                    .iter()
                    .any(|b| b.path == now.path && b.sha256 == now.sha256)
            })
        })
        .map(|s| s.path.clone())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

/// Why `route` holds back an approval with these signals, or `None`. `key` names the page to
/// open in the message (a chat button or a mail link has none of its own).
pub(in crate::app) fn refusal(
    route: &Route,
    signals: &Attention,
    page: &str,
    now_ms: u64,
    first_ms: Option<u64>,
) -> Option<String> {
    let mut missing = Vec::new();
    if route.require_open_changed && !signals.unopened.is_empty() {
        missing.push(format!(
            "open every artifact this revision changed; not opened yet: {}",
            signals.unopened.join(", ")
        ));
    }
    if let Some(min) = route.min_review_s.filter(|s| *s > 0) {
        match first_ms {
            None => missing.push(format!(
                "open the handoff and spend at least {min} s with it before approving"
            )),
            Some(first) => {
                let spent_ms = now_ms.saturating_sub(first);
                if spent_ms < min * 1000 {
                    let left = (min * 1000 - spent_ms).div_ceil(1000);
                    missing.push(format!(
                        "spend at least {min} s with it from your first view: {left} s left"
                    ));
                }
            }
        }
    }
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "not approved: route \"{}\" asks you to {}; open the handoff at {page} and approve there when done",
        route.name,
        missing.join(", and to ")
    ))
}

impl Attentions {
    /// Unix milliseconds of `who`'s first read of `rec`'s current revision, if any.
    pub fn first_ms(&self, who: &str, rec: &Record) -> Option<u64> {
        self.look(who, &rec.meta.key, rec.meta.revision)
            .map(|l| l.first_ms)
    }
}

impl Cx<'_> {
    /// Notes that `actor` opened `read` of handoff `key` (people only: an agent reading its
    /// own handoff is nobody's review). Called by the reads that serve it, after they did.
    pub fn attend(&self, actor: &Actor, key: &str, read: Opened) {
        self.attend_revision(actor, key, None, read);
    }

    /// Like `attend`, for a read that served revision `served` of `key` (an artifact or diff
    /// read from that revision's record): noted only while that revision is still the pending
    /// one, so bytes of revision N read as N+1 arrived never count as opening N+1's changes.
    pub fn attend_served(&self, actor: &Actor, key: &str, served: u32, read: Opened) {
        self.attend_revision(actor, key, Some(served), read);
    }

    fn attend_revision(&self, actor: &Actor, key: &str, served: Option<u32>, read: Opened) {
        let Actor::Reviewer { name, .. } = actor else {
            return;
        };
        let Some(ws) = self.ws_of_key(key) else {
            return;
        };
        let revision = {
            let st = ws.lock();
            match st.records.get(key) {
                Some(rec) if rec.is_pending() => rec.meta.revision,
                _ => return,
            }
        };
        if served.is_some_and(|s| s != revision) {
            tracing::debug!(key, reviewer = %name, served = ?served, revision, "a read of an earlier revision is not counted for the current one");
            return;
        }
        self.common.attention.note(name, key, revision, read);
    }

    /// What `who` had opened of pending `rec`'s revision, now: for their decision.
    pub(in crate::app) fn attention_of(&self, who: &str, rec: &Record) -> Attention {
        let now = crate::clock::now_ms();
        self.common.attention.signals(who, rec, now)
    }

    /// Why `route` holds back `who`'s approval of `rec` for want of attention, if it does:
    /// part of `approval_refused`, so every channel refuses alike.
    pub(in crate::app) fn attention_refused(
        &self,
        rec: &Record,
        route: Option<&Route>,
        who: &str,
    ) -> Option<DecideError> {
        let route = route?;
        if !route.require_open_changed && route.min_review_s.unwrap_or(0) == 0 {
            return None;
        }
        let now = crate::clock::now_ms();
        let signals = self.common.attention.signals(who, rec, now);
        let first = self.common.attention.first_ms(who, rec);
        let page = page_url(&self.config().public_url, &rec.meta.key);
        refusal(route, &signals, &page, now, first).map(DecideError::Forbidden)
    }

    /// Counts and logs an approval refused for want of attention (not the page's own check,
    /// which asks `approval_refused` at every render).
    pub(in crate::app) fn count_held(&self, rec: &Record, route: Option<&Route>, who: &str) {
        let Some(DecideError::Forbidden(why)) = self.attention_refused(rec, route, who) else {
            return;
        };
        let label = route_label(route.map(|r| r.name.as_str()));
        self.metrics().approvals_held.get_or_create(&label).inc();
        tracing::info!(key = %rec.meta.key, reviewer = who, reason = %why, "approval held back: attention required");
    }

    /// A decision was recorded: its signals go to the metrics, and the looks at `rec` are
    /// forgotten (the decision carries them).
    pub(in crate::app) fn attention_closed(&self, rec: &Record, decision: &Decision) {
        self.common.attention.forget(&rec.meta.key);
        let Some(a) = &decision.attention else {
            return;
        };
        let route = rec.meta.route.as_ref().and_then(|r| r.route.as_deref());
        let label = route_label(route);
        if let Some(s) = a.seconds {
            let m = &self.metrics().review_seconds;
            m.get_or_create(&label).observe(s as f64);
        }
        if decision.outcome == Outcome::Approved && !a.unopened.is_empty() {
            self.metrics()
                .approvals_unopened
                .get_or_create(&label)
                .inc();
        }
    }
}

fn route_label(route: Option<&str>) -> RouteLabel {
    RouteLabel {
        route: route.unwrap_or("none").to_string(),
    }
}

/// The handoff's page under `public_url`, for a message read where there is no page.
fn page_url(public_url: &str, key: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let enc = percent_encoding::utf8_percent_encode(key, SEGMENT);
    format!("{}/handoffs/{enc}", public_url.trim_end_matches('/'))
}

/// Unix milliseconds as the daemon writes times (RFC 3339, UTC, milliseconds).
fn rfc3339_ms(ms: u64) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(who: &str, rev: u32, at: u64, path: Option<&str>) -> Line {
        Line {
            key: "k".into(),
            who: Some(who.into()),
            rev,
            at,
            path: path.map(Into::into),
            diff: false,
            forget: false,
        }
    }

    #[test]
    fn a_later_revision_starts_a_new_look_and_an_earlier_one_is_ignored() {
        let mut t = Table::new();
        replay(&mut t, line("rita", 1, 1000, None));
        replay(&mut t, line("rita", 1, 5000, Some("a.txt")));
        let look = &t["k"]["rita"];
        assert_eq!((look.first_ms, look.pages, look.opened.len()), (1000, 1, 1));
        replay(&mut t, line("rita", 2, 9000, None));
        replay(&mut t, line("rita", 1, 9500, Some("b.txt")));
        let look = &t["k"]["rita"];
        assert_eq!((look.revision, look.first_ms), (2, 9000));
        assert!(look.opened.is_empty());
    }

    #[test]
    fn the_lines_of_a_look_replay_to_it() {
        let mut t = Table::new();
        replay(&mut t, line("rita", 3, 1000, None));
        replay(&mut t, line("rita", 3, 2000, None));
        let mut diff = line("rita", 3, 3000, Some("a.txt"));
        diff.diff = true;
        replay(&mut t, diff);
        let look = t["k"]["rita"].clone();
        let mut again = Table::new();
        for l in lines_of("k", "rita", &look) {
            replay(&mut again, l);
        }
        assert_eq!(again["k"]["rita"], look);
    }
}
