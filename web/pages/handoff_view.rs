//! What the handoff page shows, built from the API's own `Detail`: plain strings and lists,
//! every one of them escaped by the template. Long values are kept whole (the page folds
//! them); nothing here reads a file.

use super::fields::{self, Field};
use super::view::{self, Deadline, Meter};
use baton::app::{Change, Check, Detail, Summary};
use baton::contract::handoff::{Scope, ScopePart};
use baton::contract::{Decision, Handoff, Problem};
use serde_json::Value;
use time::OffsetDateTime;

pub struct HandoffView {
    pub key: String,
    pub title: String,
    pub task_id: String,
    pub workspace: String,
    pub from_agent: String,
    /// Whether an agent is proven to have sent this revision (`Detail::sender_proven`: its
    /// handoff and every artifact's bytes came through the API with that agent's token);
    /// otherwise `from_agent` is only what handoff.json says.
    pub sender_proven: bool,
    /// The signed-in reviewer is the proven sender (or the person its agent acts for).
    pub sent_by_you: bool,
    /// The reviewer `from_agent` names without being a proven sender.
    pub claims_reviewer: Option<String>,
    pub to_agent: Option<String>,
    pub trigger: (&'static str, &'static str),
    pub meter: Option<Meter>,
    pub age: String,
    pub received_at: String,
    pub deadline: Option<Deadline>,
    pub revision: u32,
    /// The sha256 of the revision shown: the decision form posts it, and a decision on any
    /// other content is refused.
    pub handoff_sha256: String,
    pub pending: bool,
    pub decision: Option<Decision>,
    /// Route, claim, and whether this reviewer may decide it.
    pub standing: baton::app::Standing,
    /// Approvals so far and what is missing (quorum, sign-off roles).
    pub progress: baton::app::Progress,
    /// Why the handoff is on its route (matched keys); its escalations and routing notes,
    /// as lines.
    pub route_why: String,
    pub escalations: Vec<String>,
    /// Whether this reviewer's approval would be recorded now (the core's own rules), and
    /// why not; the page offers Approve only when it would.
    pub may_approve: bool,
    pub why_not_approve: Option<String>,
    /// Whether this reviewer may take over another's claim (admins).
    pub may_take_over: bool,
}

/// One problem as people read it: where (pointer, line:column) and what.
pub struct ProblemRow {
    pub place: String,
    pub message: String,
}

pub struct CheckpointRow {
    pub step: u64,
    pub at: String,
    pub summary: String,
    pub file: String,
}

pub struct HistoryRow {
    pub key: String,
    pub title: String,
    pub outcome: String,
    pub at: String,
    pub age: String,
    pub current: bool,
}

/// One artifact line: what it is, whether it is still what was received, and where to see
/// it. Every string is the agent's or derived from it (escaped by the template).
pub struct ArtifactRow {
    pub path: String,
    pub role: String,
    pub note: String,
    pub sha256: String,
    pub size: String,
    /// "ok", "mismatch", "missing" or "unchecked".
    pub check: &'static str,
    pub check_detail: String,
    /// "new", "changed", "unchanged", "unknown", or "" on a first revision.
    pub change: &'static str,
    pub kind: &'static str,
    pub preview: String,
    pub diff_previous: Option<String>,
    pub diff_approved: Option<String>,
    pub download: String,
}

fn check_word(c: Check) -> &'static str {
    match c {
        Check::Ok => "ok",
        Check::Mismatch => "mismatch",
        Check::Missing => "missing",
        Check::Unchecked => "unchecked",
    }
}

fn change_word(c: Change) -> &'static str {
    match c {
        Change::New => "new",
        Change::Changed => "changed",
        Change::Unchanged => "unchanged",
        Change::Unknown => "unknown",
    }
}

/// The artifact lines of `key`, from `App::artifacts`.
pub fn artifact_rows(key: &str, views: Vec<baton::app::ArtifactView>) -> Vec<ArtifactRow> {
    let page = |path: &str, against: &str| {
        let segments: Vec<String> = path
            .split('/')
            .map(|s| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            })
            .collect();
        let k = percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
        format!("/handoffs/{k}/preview/{}{against}", segments.join("/"))
    };
    views
        .into_iter()
        .map(|a| ArtifactRow {
            preview: page(&a.path, ""),
            diff_previous: (a.previous == Some(Change::Changed))
                .then(|| page(&a.path, "?against=previous")),
            diff_approved: a.approved_copy.then(|| page(&a.path, "?against=approved")),
            download: crate::artifacts::artifact_url(key, &a.path, false),
            size: a
                .size
                .map(baton::render::preview::human_size)
                .unwrap_or_default(),
            check: check_word(a.check),
            check_detail: a.check_detail.unwrap_or_default(),
            change: a.previous.map_or("", change_word),
            kind: a.kind.as_str(),
            role: a.role.unwrap_or_default(),
            note: a.note.unwrap_or_default(),
            sha256: a.sha256.unwrap_or_default(),
            path: a.path,
        })
        .collect()
}

#[derive(Default)]
pub struct Sections {
    pub fields: Vec<(&'static str, String)>,
    pub covers: Vec<String>,
    pub excludes: Vec<String>,
    pub completed: Vec<String>,
    pub remaining: Vec<String>,
    pub decisions: Vec<String>,
    pub pitfalls: Vec<String>,
    pub evidence: Vec<String>,
    pub labels: Vec<String>,
    pub sign_off: Vec<String>,
    pub context: Vec<Field>,
    pub provenance: Vec<Field>,
    pub unknown: Vec<Field>,
    pub artifacts: Vec<ArtifactRow>,
    /// The checkpoint timeline as inline SVG (every text in it escaped by its maker).
    pub timeline: String,
    pub checkpoints: Vec<CheckpointRow>,
    pub checkpoints_total: usize,
    pub checkpoint_errors: Vec<(String, Vec<ProblemRow>)>,
    pub errors: Vec<ProblemRow>,
    pub history: Vec<HistoryRow>,
}

impl Sections {
    /// The `remaining` list as the decision form's textarea holds it: one item a line.
    pub fn remaining_text(&self) -> String {
        self.remaining.join("\n")
    }
}

/// A JSON value as text: strings as written, anything else as indented JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    }
}

/// `v` under its own key, so an object's fields are labelled `key › field`.
fn wrap(k: &str, v: &Value) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(k.to_string(), v.clone());
    Value::Object(m)
}

pub fn problem_row(p: &Problem) -> ProblemRow {
    let mut place = if p.pointer.is_empty() {
        "/".to_string()
    } else {
        p.pointer.clone()
    };
    if let (Some(l), Some(c)) = (p.line, p.column) {
        place.push_str(&format!(" (line {l}, column {c})"));
    }
    ProblemRow {
        place,
        message: p.message.clone(),
    }
}

fn part(p: &Option<ScopePart>) -> Vec<String> {
    match p {
        Some(ScopePart::Text(t)) => vec![t.clone()],
        Some(ScopePart::List(l)) => l.clone(),
        None => Vec::new(),
    }
}

pub fn build(d: Detail, all: &[Summary], now: OffsetDateTime) -> (HandoffView, Sections) {
    // The detail's handoff was validated at receipt; a value that no longer parses would be
    // a bug, shown as an untitled handoff rather than a failed page.
    let h: Option<Handoff> = serde_json::from_value(d.handoff.clone()).ok();
    let pending = d.state == "pending";
    let view = HandoffView {
        title: h
            .as_ref()
            .and_then(|h| h.title.clone())
            .or_else(|| h.as_ref().map(|h| h.task_id.clone()))
            .unwrap_or_else(|| d.key.clone()),
        task_id: h.as_ref().map(|h| h.task_id.clone()).unwrap_or_default(),
        workspace: d.workspace.clone(),
        from_agent: h.as_ref().map(|h| h.from_agent.clone()).unwrap_or_default(),
        sender_proven: d.sender_proven,
        sent_by_you: d.sent_by_you,
        claims_reviewer: d.from_agent_claims_reviewer.clone(),
        to_agent: h.as_ref().and_then(|h| h.to_agent.clone()),
        trigger: view::trigger(h.as_ref().and_then(|h| h.trigger)),
        meter: Meter::new(h.as_ref().and_then(|h| h.confidence)),
        age: view::age(&d.received_at, now),
        received_at: d.received_at.clone(),
        deadline: h
            .as_ref()
            .and_then(|h| h.deadline.as_deref())
            .filter(|_| pending)
            .and_then(|at| Deadline::new(at, now)),
        revision: d.revision,
        handoff_sha256: d.handoff_sha256.clone(),
        pending,
        decision: d.decision.clone(),
        key: d.key.clone(),
        standing: d.standing.clone(),
        may_approve: d.may_approve,
        why_not_approve: d.why_not_approve.clone(),
        may_take_over: d.may_take_over,
        progress: d.progress.clone(),
        route_why: d
            .routing
            .as_ref()
            .map(|r| r.matched.join(", "))
            .unwrap_or_default(),
        escalations: d
            .routing
            .iter()
            .flat_map(|r| &r.escalations)
            .map(|e| {
                let from = e.from.as_deref().unwrap_or("no route");
                format!("escalated {} from {from} to {} ({})", e.at, e.to, e.why)
            })
            .chain(d.routing.iter().flat_map(|r| r.notes.iter().cloned()))
            .collect(),
    };
    let mut s = h.map(sections).unwrap_or_default();
    s.checkpoints = d
        .checkpoints
        .iter()
        .rev()
        .map(|c| CheckpointRow {
            step: c.step,
            at: c.checkpoint.get("at").map(text_of).unwrap_or_default(),
            summary: c.checkpoint.get("summary").map(text_of).unwrap_or_default(),
            file: c.file.clone(),
        })
        .collect();
    s.checkpoints_total = d.checkpoints_total;
    s.checkpoint_errors = d
        .checkpoint_errors
        .iter()
        .map(|(f, ps)| (f.clone(), ps.iter().map(problem_row).collect()))
        .collect();
    s.errors = d
        .decision
        .iter()
        .flat_map(|x| x.errors.iter())
        .map(problem_row)
        .collect();
    s.history = all
        .iter()
        .filter(|x| x.workspace == d.workspace)
        .rev()
        .take(50)
        .map(|x| HistoryRow {
            key: x.key.clone(),
            title: x.title.clone().unwrap_or_else(|| x.task_id.clone()),
            outcome: x.outcome.map_or("pending", |o| o.as_str()).to_string(),
            at: x.received_at.clone(),
            age: view::age(&x.received_at, now),
            current: x.key == d.key,
        })
        .collect();
    (view, s)
}

fn sections(h: Handoff) -> Sections {
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    let mut put = |label: &'static str, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            fields.push((label, v));
        }
    };
    put("Summary", h.summary);
    put("Task", h.task);
    put("Reason", h.reason);
    put("Expected back", h.expected_output);
    // The contract's own words ("in_progress"), read as words ("in progress"): the Debug
    // name lowercased ran them together ("inprogress").
    let words = |v: serde_json::Result<serde_json::Value>| {
        v.ok().and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
    };
    put(
        "Task status",
        h.status.and_then(|x| words(serde_json::to_value(x))),
    );
    put(
        "Classification",
        h.classification
            .and_then(|x| words(serde_json::to_value(x))),
    );
    put("Regulation", h.regulatory_ref);
    put(
        "Fallback",
        h.fallback.map(|f| {
            format!(
                "after {} s without a decision, escalate to route {}",
                f.after_seconds, f.route
            )
        }),
    );
    let (covers, excludes) = match &h.scope {
        Some(Scope::Text(t)) => (vec![t.clone()], Vec::new()),
        Some(Scope::Parts { covers, excludes }) => (part(covers), part(excludes)),
        None => (Vec::new(), Vec::new()),
    };
    let provenance = h.provenance.as_ref().map_or_else(Vec::new, |p| {
        let v = serde_json::to_value(p).unwrap_or_default();
        v.as_object().map(fields::of_object).unwrap_or_default()
    });
    Sections {
        fields,
        covers,
        excludes,
        completed: h.completed,
        remaining: h.remaining,
        decisions: h.decisions,
        pitfalls: h.pitfalls_hit,
        evidence: h.evidence_refs,
        labels: h.labels,
        sign_off: h.sign_off,
        context: h
            .context
            .as_ref()
            .map(fields::of_object)
            .unwrap_or_default(),
        provenance,
        unknown: h
            .extra
            .iter()
            .flat_map(|(k, v)| fields::of_value(k, &wrap(k, v)))
            .collect(),
        ..Sections::default()
    }
}
