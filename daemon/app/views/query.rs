//! Read-only views of the state for the API and pages.

use crate::app::model::Progress;
use crate::app::review::attention::Opened;
use crate::app::state::{CheckpointRecord, Record};
use crate::app::views::queue::Standing;
use crate::app::{App, Served};
use crate::auth::Actor;
use crate::contract::handoff::Trigger;
use crate::contract::{Decision, Outcome, Problem};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StateFilter {
    #[default]
    Pending,
    Decided,
    All,
}

/// One line of the queue (`GET /api/v1/handoffs`). Read back too: a cluster's node merges
/// the lines of the others (see baton-web's peers).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Summary {
    pub key: String,
    pub task_id: String,
    pub workspace: String,
    pub from_agent: String,
    // Absent fields are left out, never `null` (as in the contract files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(deserialize_with = "known_state")]
    pub state: State,
    /// The revision in place (1 for a handoff never revised).
    pub revision: u32,
    /// The sha256 of the revision in place: with `revision`, what a bulk approval names as
    /// read. (Empty from a node that does not say it; an approval naming it is then refused.)
    #[serde(default)]
    pub handoff_sha256: String,
    pub received_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The handoff's `deadline` (RFC 3339), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Who decided it and when (absent while pending).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    #[serde(flatten)]
    pub standing: Standing,
    /// How many distinct reviewers approved the current revision.
    pub approvals: usize,
    pub approvals_needed: usize,
}

/// One handoff whole (`GET /api/v1/handoffs/{key}`).
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub key: String,
    pub workspace: String,
    pub state: &'static str,
    pub handoff: Value,
    /// The task's newest checkpoints (at most 100), oldest step first.
    pub checkpoints: Vec<CheckpointRecord>,
    /// How many checkpoints the task has in all.
    pub checkpoints_total: usize,
    /// The newest step of the task: where it stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_checkpoint: Option<CheckpointRecord>,
    /// Absent while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub revision: u32,
    /// The sha256 of the revision in place (what a decision may name as read).
    pub handoff_sha256: String,
    pub received_at: String,
    /// Problems of checkpoint files in the workspace, by file name.
    pub checkpoint_errors: BTreeMap<String, Vec<Problem>>,
    /// The route it is on and why: matched keys, escalations, a circular reassignment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing: Option<crate::app::Routed>,
    /// The advisory locks in force in the handoff's workspace (`{path, owner, purpose?,
    /// token, acquired_at, expires_at}`).
    #[serde(serialize_with = "crate::locks::serialize_shown")]
    pub locks: Vec<crate::locks::Lock>,
    /// The agent proven to have sent this revision: its handoff.json and each artifact's
    /// bytes came through the API with that agent's token (`app::review::sender`, the proof
    /// policies and the approval read). Absent when nothing proves it: `from_agent` is then
    /// only what any writer of the share typed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Whether `sender` is proven; false says "unproven" in so many words.
    pub sender_proven: bool,
    /// The reviewer `from_agent` names when no sender is proven: a claim to be someone who
    /// decides, flagged on the page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_agent_claims_reviewer: Option<String>,
    /// The caller is the person (or agent) whose agent is proven to have sent it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub sent_by_you: bool,
    #[serde(flatten)]
    pub standing: Standing,
    /// Approvals of the current revision and what is still missing.
    #[serde(flatten)]
    pub progress: Progress,
    /// Whether an approval by the caller would be recorded now, by the rules `decide`
    /// applies (route, sender, sign-off roles, an approval already given, artifacts that
    /// still match their sha256).
    pub may_approve: bool,
    /// Why not, for a reviewer of a pending handoff who may not approve it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_not_approve: Option<String>,
    /// Whether the caller may take over another reviewer's claim (an admin).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub may_take_over: bool,
}

/// Most checkpoints (and checkpoint files with errors) in one detail answer.
const DETAIL_CHECKPOINTS: usize = 100;

/// Which of a task's checkpoints a detail answer carries: the newest `checkpoints_limit`
/// (at most 100) after skipping the newest `checkpoints_offset`, oldest step first.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
pub struct CheckpointPage {
    #[serde(default)]
    pub checkpoints_offset: usize,
    #[serde(default)]
    pub checkpoints_limit: Option<usize>,
}

/// A handoff's state, `pending` or `decided`. (An alias, so serde's derive does not take the
/// reference for one borrowed from the input.)
pub type State = &'static str;

/// A line's `state` as read back from another node: one of the states this binary names.
fn known_state<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let state = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
    match state.as_ref() {
        "pending" => Ok("pending"),
        "decided" => Ok("decided"),
        other => Err(serde::de::Error::unknown_variant(
            other,
            &["pending", "decided"],
        )),
    }
}

fn state_of(r: &Record) -> &'static str {
    if r.is_pending() {
        "pending"
    } else {
        "decided"
    }
}

impl App {
    /// Handoffs the actor may see, oldest first.
    pub fn list(&self, filter: StateFilter, actor: &Actor) -> Vec<Summary> {
        let mut out = Vec::new();
        // Canary places too: a reviewer's list shows their handoffs like any other.
        for ws in self
            .workspaces()
            .into_iter()
            .chain(self.inner.registry.places())
        {
            if !ws.seen_by(actor) {
                continue;
            }
            let st = ws.lock();
            for r in st.records.values() {
                let keep = match filter {
                    StateFilter::Pending => r.is_pending(),
                    StateFilter::Decided => !r.is_pending(),
                    StateFilter::All => true,
                };
                if keep {
                    out.push(self.summarize(&ws.workspace.name, r, actor));
                }
            }
        }
        out.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.key.cmp(&b.key)));
        out
    }

    /// The list's line of `r`, a record of workspace `ws`, as `actor` sees it.
    pub(in crate::app) fn summarize(&self, ws: &str, r: &Record, actor: &Actor) -> Summary {
        let (standing, route) = self.standing(ws, r, actor);
        let handoff = r.head();
        let approvals_needed = crate::routing::approvals_needed_for(route, handoff.sign_offs());
        Summary {
            key: r.meta.key.clone(),
            task_id: r.meta.task_id.clone(),
            workspace: ws.to_string(),
            from_agent: handoff.from_agent,
            title: handoff.title,
            trigger: handoff.trigger,
            confidence: handoff.confidence,
            state: state_of(r),
            revision: r.meta.revision,
            handoff_sha256: r.meta.digest.clone(),
            received_at: r.meta.received_at.clone(),
            outcome: r.decision.as_ref().map(|d| d.outcome),
            decided_by: r.decision.as_ref().map(|d| d.by.to_string()),
            decided_at: r.decision.as_ref().map(|d| d.at.to_string()),
            approvals: r.review.approvals.len(),
            approvals_needed,
            deadline: handoff.deadline,
            standing,
        }
    }

    /// The workspace that holds handoff `key`, if the actor may see it.
    pub(in crate::app) fn served_for(&self, key: &str, actor: &Actor) -> Option<Arc<Served>> {
        self.ws_of_key(key).filter(|ws| ws.seen_by(actor))
    }

    /// Why handoff `key` cannot be read now: its record is left out as damaged in the store
    /// of a workspace the actor may see (`None`: the key is simply unknown to the actor).
    /// Damage is answered as such, never as a handoff that does not exist.
    pub fn damaged_record(&self, key: &str, actor: &Actor) -> Option<String> {
        let dir = format!("handoffs/{}/", crate::workspace::key_dir_name(key));
        let damaged = self.inner.registry.pick(|ws| {
            if !actor.can_see(&ws.workspace.name) {
                return None;
            }
            let damage = ws.store.damaged();
            damage
                .iter()
                .any(|d| d.file.starts_with(&dir))
                .then(|| crate::store::Damaged(damage).to_string())
        });
        damaged.into_iter().next()
    }

    /// One handoff with its checkpoints and decision, if the actor may see it.
    pub fn get(&self, key: &str, actor: &Actor, page: CheckpointPage) -> Option<Detail> {
        let ws = self.served_for(key, actor)?;
        // A reviewer reading the handoff: their first view starts `min_review_s`, and this
        // read's answer (may they approve?) already counts it.
        self.cx().attend(actor, key, Opened::Page);
        let ws_name = ws.workspace.name.clone();
        let locks = self.cx().locks_of(&ws);
        let st = ws.lock();
        let r = st.records.get(key)?;
        let mut checkpoints = st.checkpoints_of(&r.meta.task_id);
        let checkpoints_total = checkpoints.len();
        let latest_checkpoint = checkpoints.last().cloned();
        // Bounded answers: an agent writing thousands of checkpoints must not make every
        // detail request copy them all.
        let limit = page
            .checkpoints_limit
            .unwrap_or(DETAIL_CHECKPOINTS)
            .min(DETAIL_CHECKPOINTS);
        let end = checkpoints_total.saturating_sub(page.checkpoints_offset);
        checkpoints.truncate(end);
        checkpoints.drain(..end.saturating_sub(limit));
        let checkpoint_errors = st
            .checkpoint_errors
            .iter()
            .take(DETAIL_CHECKPOINTS)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (standing, route) = self.standing(&ws_name, r, actor);
        let progress = Progress::of(route, r);
        let agents = &self.config().agents;
        let handoff = r.handoff();
        let sender = self.cx().proven_sender(r, &ws_name);
        let from_agent_claims_reviewer =
            crate::routing::reviewer_claimed(&handoff, &self.config().users, sender.as_deref())
                .map(str::to_string);
        let sent_by_you = match actor {
            Actor::Reviewer { name, .. } => sender
                .as_deref()
                .is_some_and(|s| crate::routing::sent_by(agents, s, name).is_some()),
            Actor::Agent { .. } => false,
        };
        let (why_not_approve, may_take_over) = match actor {
            Actor::Reviewer { name, roles } if r.is_pending() => (
                self.cx()
                    .approval_refused(&ws, r, name, roles)
                    .map(|e| e.to_string()),
                self.cx().may_take_over(&ws_name, r, name, roles),
            ),
            _ => (Some(String::new()), false),
        };
        let may_approve = why_not_approve.is_none();
        let why_not_approve = why_not_approve.filter(|w| !w.is_empty());
        Some(Detail {
            key: key.to_string(),
            workspace: ws_name,
            state: state_of(r),
            handoff: r.value.value(),
            latest_checkpoint,
            checkpoints,
            checkpoints_total,
            decision: r.decision.as_ref().map(|d| d.decision()),
            revision: r.meta.revision,
            handoff_sha256: r.meta.digest.clone(),
            received_at: r.meta.received_at.clone(),
            checkpoint_errors,
            routing: r.meta.route.clone(),
            locks,
            sender_proven: sender.is_some(),
            sender,
            from_agent_claims_reviewer,
            sent_by_you,
            standing,
            progress,
            may_approve,
            why_not_approve,
            may_take_over,
        })
    }
}
