//! What the daemon knows of one workspace, in memory, and the archive records it is rebuilt
//! from at start-up (the store's `handoffs/<key>/{rev-N,meta,decision,signoffs,approvals,claim}.json`).

use crate::audit::AuditLog;
use crate::contract::decision::Shadow;
use crate::contract::handoff::Trigger;
use crate::contract::{Decision, Handoff, Outcome, Problem, SignOff};
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A workspace this daemon serves: its folder, its records and audit log, and its state in
/// memory. The mutex serializes ingest and decisions on the workspace.
#[derive(Debug)]
pub struct Served {
    pub workspace: Workspace,
    /// The daemon's records of this workspace, in data_dir: the truth.
    pub store: crate::store::Store,
    /// The audit anchor, tamper history and evidence, in data_dir.
    pub anchors: crate::audit::Anchors,
    pub audit: AuditLog,
    pub state: Mutex<WsState>,
    /// Last agent activity (unix ms); 0: none since start-up.
    pub activity: std::sync::atomic::AtomicU64,
    /// `agent.stalled` was raised and no activity has happened since.
    pub stalled: std::sync::atomic::AtomicBool,
    /// What the daemon has logged of the workspace's lock table.
    pub lock_seen: crate::app::LockSeen,
    /// The approved files' manifest, loaded from the store when first needed.
    pub approved: crate::app::review::approved::Approved,
    /// Its memos found damaged and not yet written sound again (see `review::memo_damage`).
    pub memos: crate::app::review::memo_damage::MemoDamage,
    /// The records whose published copies were rewritten since their fingerprints were kept.
    pub copies: crate::app::rewrites::Rewrites,
    /// `Some` for a canary place (see `review::canary`): a daemon-owned folder in data_dir
    /// served under this registry name, whose events reach no outbox and no subscriber.
    pub place: Option<String>,
    /// Which folder the workspace is served from (see `workspace::folder_mark`): a decision
    /// checks it is still the one at the path before writing there. `None` if it could not
    /// be read at load (then nothing is compared).
    pub folder: Option<crate::workspace::folder_mark::FolderMark>,
}

impl Served {
    /// The name the registry and the key map know it by: its workspace's, or for a canary
    /// place the place's own (its workspace name is the one it stands in for, as shown).
    pub fn registry_name(&self) -> &str {
        self.place.as_deref().unwrap_or(&self.workspace.name)
    }

    /// Whether `actor` may see this workspace's handoffs. A canary place is seen by
    /// reviewers only, as the workspace it stands in for: never by an agent's token.
    pub fn seen_by(&self, actor: &crate::auth::Actor) -> bool {
        match &self.place {
            None => actor.can_see(&self.workspace.name),
            Some(_) => matches!(actor, crate::auth::Actor::Reviewer { .. }),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, WsState> {
        // A panic while holding the lock is a bug already logged; the state is still the best
        // we have, so keep serving rather than poison every later request.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Default)]
pub struct WsState {
    /// Boxed: a B-tree node holds room for eleven values, and most workspaces hold a few
    /// records; eleven slots of a whole record each would cost far more than the records.
    pub records: BTreeMap<String, Box<Record>>,
    pub pending: Option<String>,
    /// The handoff.json last processed: skip re-processing identical bytes.
    pub current: Option<Current>,
    pub checkpoints: BTreeMap<String, CheckpointRecord>,
    pub checkpoint_errors: BTreeMap<String, Vec<Problem>>,
    /// Checkpoint file -> digest already announced (persisted, so restarts stay quiet).
    pub seen_checkpoints: BTreeMap<String, String>,
    /// Key -> why: a decision whose commit's outcome is unknown (`DecideError::Unsure`); no
    /// other is made on it until the records are loaded again.
    pub unsure: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct Current {
    pub raw_sha: String,
    pub key: String,
    /// Digest of its content (canonical JSON; raw bytes when not JSON).
    pub digest: String,
    /// The `invalid` answer given to it, when it is not a valid handoff.
    pub invalid: Option<Box<crate::contract::Decision>>,
}

/// A handoff the daemon has accepted, pending or decided.
#[derive(Debug, Clone)]
pub struct Record {
    pub meta: Meta,
    /// The handoff parsed, kept while it is pending: the transitions read it often. A decided
    /// one is parsed from `value` when asked (a page, an earlier answer): a daemon holds
    /// 100,000 decided records and more, and the parsed form is several times its text.
    parsed: Option<Box<Handoff>>,
    /// The document as received, every field (unknown ones too).
    pub value: RawJson,
    pub decision: Option<KeptDecision>,
    /// Sign-offs gathered so far under the handoff's `sign_off` gate (current revision).
    pub sign_offs: Vec<SignOff>,
    /// Reviewers' work on it: approvals of the current revision, the claim.
    pub review: Review,
}

/// A JSON document kept as its text. A parsed `Value` takes several times the memory of its
/// text (a map node per field), and a daemon keeps 100,000 records and more; the document is
/// read whole only for one handoff's detail or A2A task at a time, so it is parsed then.
#[derive(Debug, Clone)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// The text of `value`.
    pub fn of(value: &Value) -> RawJson {
        RawJson(value.to_string().into_boxed_str())
    }

    /// `text`, already known to be valid JSON (the committed revision the value was read from).
    pub fn from_text(text: String) -> RawJson {
        RawJson(text.into_boxed_str())
    }

    /// The document (`Null` only if the text were not JSON, which `of` and the load rule out).
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The document as a handoff. The text is one the daemon accepted (receipt and load
    /// parse it first), so it parses; were it ever not to, the handoff reads as empty rather
    /// than failing a page.
    fn handoff(&self) -> Handoff {
        self.read()
    }

    /// The document's `Head`, read as `handoff` is.
    fn head(&self) -> Head {
        self.read()
    }

    fn read<T: serde::de::DeserializeOwned + Default>(&self) -> T {
        serde_json::from_str(&self.0).unwrap_or_else(|e| {
            tracing::error!(error = %e, "a recorded handoff no longer parses");
            T::default()
        })
    }
}

/// The few fields of a handoff that a line of a list or an order shows. Read from a decided
/// record's text without the rest: the whole `Handoff` (its unknown fields gathered by
/// `flatten`) made a fifth of the time of a list of 50 decided handoffs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Head {
    pub from_agent: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default)]
    pub confidence: Option<f64>,
    #[serde(default)]
    pub deadline: Option<String>,
    /// The `sign_off` gate, counted only.
    #[serde(default, rename = "sign_off")]
    sign_off: Vec<serde::de::IgnoredAny>,
}

impl Head {
    fn of(h: &Handoff) -> Head {
        Head {
            from_agent: h.from_agent.clone(),
            title: h.title.clone(),
            trigger: h.trigger,
            confidence: h.confidence,
            deadline: h.deadline.clone(),
            sign_off: vec![serde::de::IgnoredAny; h.sign_off.len()],
        }
    }

    /// How many sign-offs the handoff asks for.
    pub fn sign_offs(&self) -> usize {
        self.sign_off.len()
    }
}

/// A decision as its record keeps it: what lists and scans read of it, and its whole text.
/// It is read whole for one handoff at a time (its page, a conflict, a rewrite of its files);
/// parsed, with its receipt, it was about a kilobyte in each of 100,000 records and more.
#[derive(Debug, Clone)]
pub struct KeptDecision {
    pub outcome: Outcome,
    pub by: Box<str>,
    pub at: Box<str>,
    pub task_id: Box<str>,
    /// What a shadow policy would have decided (rare; the agreement view scans for it).
    pub shadow: Option<Box<Shadow>>,
    /// What the deciding person had opened (attention signals; the reviewers page counts them).
    pub attention: Option<Box<crate::contract::attention::Attention>>,
    text: Box<str>,
}

impl KeptDecision {
    pub fn of(d: &Decision) -> KeptDecision {
        KeptDecision {
            outcome: d.outcome,
            by: d.by.as_str().into(),
            at: d.at.as_str().into(),
            task_id: d.task_id.as_str().into(),
            shadow: d.shadow.clone().map(Box::new),
            attention: d.attention.clone().map(Box::new),
            text: serde_json::to_string(d)
                .expect("a decision serializes")
                .into_boxed_str(),
        }
    }

    /// The whole decision, parsed from the text `of` wrote.
    pub fn decision(&self) -> Decision {
        serde_json::from_str(&self.text).expect("a decision parses from its own text")
    }
}

/// What reviewers did on a handoff short of deciding it.
#[derive(Debug, Clone, Default)]
pub struct Review {
    /// Every approval given to the current revision, sign-offs included (a revision clears
    /// them: they were given to other content).
    pub approvals: Vec<crate::app::model::Approval>,
    /// The last claim made or released; see `Record::claimed` for whether it holds.
    /// Boxed: most records hold none, and a claim inline is 144 bytes in every record.
    pub claim: Option<Box<crate::app::model::Claim>>,
}

impl Record {
    /// A record of `handoff`, received as `value`.
    pub fn new(meta: Meta, handoff: Handoff, value: RawJson, decision: Option<Decision>) -> Record {
        let mut record = Record {
            meta,
            parsed: Some(Box::new(handoff)),
            value,
            decision: decision.as_ref().map(KeptDecision::of),
            sign_offs: Vec::new(),
            review: Review::default(),
        };
        record.settle();
        record
    }

    pub fn is_pending(&self) -> bool {
        self.decision.is_none()
    }

    /// The handoff: as kept while pending, parsed again from its text once decided.
    pub fn handoff(&self) -> Cow<'_, Handoff> {
        match &self.parsed {
            Some(handoff) => Cow::Borrowed(handoff),
            None => Cow::Owned(self.value.handoff()),
        }
    }

    /// What lists and orders show of the handoff (`Head`): taken from the parsed handoff
    /// while pending, read from the text alone once decided.
    pub fn head(&self) -> Head {
        match &self.parsed {
            Some(handoff) => Head::of(handoff),
            None => self.value.head(),
        }
    }

    /// KeptDecision: the parsed handoff is let go (see `parsed`), and the lists that no longer
    /// grow keep only what they hold (a list grows by doubling, from room for four).
    pub fn settle(&mut self) {
        if self.decision.is_some() {
            self.parsed = None;
            self.review.approvals.shrink_to_fit();
            self.sign_offs.shrink_to_fit();
        }
    }
}

/// `.baton/handoffs/<key>/meta.json`; written last, so its presence marks a complete archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    pub task_id: String,
    pub received_at: String,
    /// When this revision was received (equal to `received_at` for the first).
    #[serde(default)]
    pub updated_at: String,
    pub revision: u32,
    /// sha256 of the canonical JSON of the current revision.
    pub digest: String,
    /// The artifacts of the current revision as they were when it was received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<crate::app::model::Stamp>,
    /// The artifacts of the revision before this one (what the handoff page diffs against);
    /// absent for revision 1, and for revisions recorded before baton kept them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_artifacts: Option<Vec<crate::app::model::Stamp>>,
    /// The route it is on and why (absent for records from before routes were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::app::model::Routed>,
}

/// A valid checkpoint file, as last read.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointRecord {
    pub file: String,
    pub task_id: String,
    pub step: u64,
    pub checkpoint: Value,
}

impl WsState {
    /// The checkpoints of one task, oldest step first.
    pub fn checkpoints_of(&self, task_id: &str) -> Vec<CheckpointRecord> {
        let mut list: Vec<CheckpointRecord> = self
            .checkpoints
            .values()
            .filter(|c| c.task_id == task_id)
            .cloned()
            .collect();
        list.sort_by_key(|c| c.step);
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::borrow::Cow;

    fn record(decided: bool) -> Record {
        let doc = json!({"handoff_version": "1.0", "task_id": "t1", "from_agent": "a",
            "title": "the title", "remaining": ["one", "two"], "context": {"k": 1},
            "trigger": "error", "confidence": 0.25, "deadline": "2026-02-01T00:00:00Z",
            "sign_off": ["legal", "security"], "x-unknown": {"deep": [1, {"title": "not it"}]}});
        let meta = serde_json::from_value(json!({"key": "k1", "task_id": "t1",
            "received_at": "2026-01-01T00:00:00Z", "revision": 1, "digest": "d"}));
        let decision = serde_json::from_value(json!({"decision_version": "1.0",
            "handoff_key": "k1", "task_id": "t1", "outcome": "approved", "by": "r",
            "at": "2026-01-01T00:01:00Z"}));
        let handoff = serde_json::from_value(doc.clone()).expect("a handoff");
        let decision = decided.then(|| decision.expect("a decision"));
        Record::new(meta.expect("a meta"), handoff, RawJson::of(&doc), decision)
    }

    #[test]
    fn a_decided_record_keeps_its_text_and_reads_the_same_handoff_from_it() {
        let pending = record(false);
        assert!(matches!(pending.handoff(), Cow::Borrowed(_)));
        let decided = record(true);
        assert!(
            decided.parsed.is_none(),
            "a decided record lets the parsed form go"
        );
        assert!(matches!(decided.handoff(), Cow::Owned(_)));
        assert_eq!(*decided.handoff(), *pending.handoff());
        assert_eq!(decided.handoff().remaining, ["one", "two"]);
    }

    #[test]
    fn a_decided_record_reads_the_same_head_from_its_text_alone() {
        let (pending, decided) = (record(false), record(true));
        let head = decided.head();
        assert_eq!(head, pending.head());
        assert_eq!(head.from_agent, "a");
        assert_eq!(head.title.as_deref(), Some("the title"));
        assert_eq!(head.trigger, Some(Trigger::Error));
        assert_eq!(head.confidence, Some(0.25));
        assert_eq!(head.deadline.as_deref(), Some("2026-02-01T00:00:00Z"));
        assert_eq!(head.sign_offs(), 2);
    }

    #[test]
    fn a_kept_decision_gives_back_every_field_it_was_made_of() {
        let full: Decision = serde_json::from_value(json!({"decision_version": "1.0",
            "handoff_key": "k1", "task_id": "t1", "outcome": "changes_requested", "by": "rita",
            "at": "2026-01-01T00:01:00.000Z", "comment": "see <b>", "to_agent": "agent-7",
            "errors": [{"pointer": "/title", "message": "too long"}],
            "sign_offs": [{"role": "security", "by": "sam", "at": "2026-01-01T00:00:30Z"}],
            "instructions": "split it", "remaining": ["a", "b"],
            "handoff_sha256": "ab".repeat(32), "policy": "human",
            "shadow": {"policy": "sha256:00", "would_approve": true},
            "receipt": {"alg": "ed25519", "key_id": "ed25519:1", "signature": "c2ln",
                "claims": {"v": 1, "workspace": "w", "handoff_key": "k1", "revision": 2,
                    "artifacts": [{"path": "inbox/x", "sha256": "00"}],
                    "outcome": "changes_requested", "by": "rita",
                    "at": "2026-01-01T00:01:00.000Z", "valid_until": "2026-01-02T00:00:00Z"}}}))
        .expect("a full decision");
        let kept = KeptDecision::of(&full);
        assert_eq!(kept.decision(), full);
        assert_eq!(
            (kept.outcome, &*kept.by, &*kept.at, &*kept.task_id),
            (
                Outcome::ChangesRequested,
                "rita",
                "2026-01-01T00:01:00.000Z",
                "t1"
            )
        );
        assert!(kept.shadow.is_some_and(|s| s.would_approve));
    }
}
