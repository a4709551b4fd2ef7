//! Decisions: a reviewer's answer (or the system's, or a policy's) to a pending handoff. The
//! archive copy is written first, then the root decision.json; a crash in between leaves the
//! decision recorded, and the start-up reconcile restores the root copy.

use crate::app::model::{Closing, DecideError, Decided, Progress, Recorded, Remark, DECISION};
use crate::app::review::ingest::write_json;
use crate::app::review::records::json_bytes;
use crate::app::review::step_up::PasskeyAnswer;
use crate::app::review::Cx;
use crate::app::state::{KeptDecision, WsState};
use crate::app::Served;
use crate::auth::Actor;
use crate::clock::now_rfc3339;
use crate::contract::decision::{Edits, Via, DECISION_VERSION};
use crate::contract::{Decision, Outcome};
use crate::events::{Event, EventType};
use serde::Deserialize;
use serde_json::json;
use std::io;

/// The body of `POST /api/v1/handoffs/{key}/decision`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    pub outcome: Outcome,
    #[serde(default)]
    pub comment: Option<String>,
    /// The revision the reviewer saw; a newer one in place answers 409 (approve what you saw).
    /// An approval names it (422 without it: `unbound_approval`).
    #[serde(default)]
    pub revision: Option<u32>,
    /// And the sha256 of the content the reviewer saw (`decision.json`'s `handoff_sha256`):
    /// other content in place answers 409.
    #[serde(default)]
    pub handoff_sha256: Option<String>,
    /// For `reassigned` (and only for it): who continues.
    #[serde(default)]
    pub to_agent: Option<String>,
    /// With `approved` or `changes_requested`: `instructions` and an edited `remaining`.
    #[serde(default)]
    pub edits: Edits,
}

use crate::contract::request::decision::{MAX_COMMENT, MAX_TO_AGENT};

impl DecisionRequest {
    /// What the request asks, checked before anything is looked up (by the bulk decision too,
    /// before any handoff is decided). Returns the `to_agent` to record, trimmed. The rules
    /// are the OpenAPI document's `DecisionRequest` schema: limits count characters, as
    /// `maxLength` does, and are checked on what was sent, before trimming.
    pub fn check(&self) -> Result<Option<String>, DecideError> {
        check_request(self)
    }
}

fn check_request(req: &DecisionRequest) -> Result<Option<String>, DecideError> {
    let bad = |m: &str| Err(DecideError::Unprocessable(m.to_string()));
    let reviewer_outcomes = [
        Outcome::Approved,
        Outcome::Rejected,
        Outcome::ChangesRequested,
        Outcome::Reassigned,
    ];
    if !reviewer_outcomes.contains(&req.outcome) {
        return bad(
            "outcome must be \"approved\", \"rejected\", \"changes_requested\" or \"reassigned\"",
        );
    }
    if req
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT)
    {
        return bad(&format!("comment is over {MAX_COMMENT} characters"));
    }
    crate::app::review::edits::check_limits(&req.edits)?;
    if req
        .to_agent
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TO_AGENT)
    {
        return bad(&format!("to_agent is over {MAX_TO_AGENT} characters"));
    }
    let sent = req.to_agent.as_deref();
    match (req.outcome, sent.map(str::trim)) {
        (Outcome::Reassigned, None | Some("")) => bad(
            "outcome \"reassigned\" needs to_agent: who continues (an agent, a reviewer, a route)",
        ),
        (Outcome::Reassigned, Some(_)) if sent.is_some_and(|t| t.chars().any(char::is_control)) => {
            bad("to_agent may not hold control characters (line breaks, tabs, ...)")
        }
        (Outcome::Reassigned, Some(to)) => Ok(Some(to.to_string())),
        // A blank one is no answer (a form sends its empty field with every outcome).
        (_, None | Some("")) => Ok(None),
        (_, Some(_)) => bad("to_agent is only for outcome \"reassigned\""),
    }
}

/// An approval that does not name the revision the reviewer read is refused: one naming
/// nothing would approve whatever revision is in place when it arrives, and an agent that
/// revised its handoff since the reviewer read it would get a signed approval of content no
/// person saw. A digest alone is not enough either: the same handoff.json may be in place
/// again at a later revision (A, then B, then A with another artifact), which the digest
/// cannot tell from the one read. The revision names one revision of the record in place, and
/// `handoff_sha256`, checked when sent, its content.
/// Checked here, in the one transition every channel calls, so a new channel cannot forget
/// it. The other outcomes may name nothing: a rejection, a request for changes or a
/// reassignment of a revision the reviewer did not read approves nothing (and the agent hears
/// of it and may send again). A policy or a grant does not come here; it settles the revision
/// it judged, under the workspace's lock.
fn unbound_approval(key: &str, req: &DecisionRequest) -> Result<(), DecideError> {
    if req.outcome != Outcome::Approved || req.revision.is_some() {
        return Ok(());
    }
    let digest_named = req
        .handoff_sha256
        .as_deref()
        .is_some_and(|h| !h.trim().is_empty());
    let missing = match digest_named {
        true => "\"revision\" is missing: a \"handoff_sha256\" alone may name content in place again at a later revision",
        false => "it names nothing the reviewer read",
    };
    Err(DecideError::Unprocessable(format!(
        "not approved: an approval names what the reviewer read of handoff \"{key}\", and {missing}: send its \"revision\" and \"handoff_sha256\" as GET /api/v1/handoffs/{key} gives them; a revision made since is then refused (409), never approved unread"
    )))
}

/// A request made on another revision than the one in place.
fn stale(req: &DecisionRequest, rec: &crate::app::state::Record) -> Result<(), DecideError> {
    let (current, digest) = (rec.meta.revision, &rec.meta.digest);
    let seen_other = req.revision.is_some_and(|r| r != current)
        || req
            .handoff_sha256
            .as_ref()
            .is_some_and(|h| !h.eq_ignore_ascii_case(digest));
    if !seen_other {
        return Ok(());
    }
    Err(DecideError::Stale {
        message: format!(
            "handoff \"{}\" changed since it was read: revision {current} is in place; read it again before deciding",
            rec.meta.key
        ),
        revision: current,
    })
}

impl Cx<'_> {
    /// Whether `by` names an agent (`NAME` or its worker `NAME/WORKER`): names are unique
    /// across `[[users]]` and `[[agents]]`, and a person's holds no `/`.
    fn is_agent(&self, by: &str) -> bool {
        let name = by.split('/').next().unwrap_or(by);
        self.config().agents.iter().any(|a| a.name == name)
    }

    /// A reviewer decides a pending handoff through the API.
    pub fn decide(
        &self,
        key: &str,
        req: DecisionRequest,
        actor: &Actor,
    ) -> Result<Decided, DecideError> {
        self.decide_via(key, req, actor, Via::Api)
    }

    /// A reviewer decides a pending handoff: every path (API, pages, bulk, mail links) comes
    /// here, so every rule holds on all of them; `via` is only recorded in the audit event.
    pub fn decide_via(
        &self,
        key: &str,
        req: DecisionRequest,
        actor: &Actor,
        via: Via,
    ) -> Result<Decided, DecideError> {
        self.decide_granting(key, req, actor, via, None)
            .map(|(decided, _)| decided)
    }

    /// `decide_via`, and with an approval the reviewer's scoped grant (`grants`): checked
    /// before anything is approved, saved with the approval, withdrawn if it fails. Returns
    /// the grant made, if any.
    pub fn decide_granting(
        &self,
        key: &str,
        req: DecisionRequest,
        actor: &Actor,
        via: Via,
        grant: Option<crate::app::review::grants::GrantRequest>,
    ) -> Result<(Decided, Option<crate::app::Grant>), DecideError> {
        self.decide_stepped(key, req, actor, via, grant, None)
    }

    /// The handoff page's decision with the passkey confirmation its route asks for
    /// (`step_up`): `decide_granting` carrying the browser's assertion.
    pub fn decide_with_passkey(
        &self,
        key: &str,
        req: DecisionRequest,
        actor: &Actor,
        grant: Option<crate::app::review::grants::GrantRequest>,
        answer: PasskeyAnswer,
    ) -> Result<(Decided, Option<crate::app::Grant>), DecideError> {
        self.decide_stepped(key, req, actor, Via::Page, grant, Some(answer))
    }

    fn decide_stepped(
        &self,
        key: &str,
        req: DecisionRequest,
        actor: &Actor,
        via: Via,
        grant: Option<crate::app::review::grants::GrantRequest>,
        answer: Option<PasskeyAnswer>,
    ) -> Result<(Decided, Option<crate::app::Grant>), DecideError> {
        let to_agent = check_request(&req)?;
        if grant.is_some() && req.outcome != Outcome::Approved {
            return Err(DecideError::Unprocessable(
                "grant is only for outcome \"approved\"".into(),
            ));
        }
        let edits = crate::app::review::edits::checked(req.outcome, req.edits.clone())?;
        let Actor::Reviewer { name, roles } = actor else {
            return Err(DecideError::Forbidden(
                "agent tokens cannot decide handoffs".into(),
            ));
        };
        if let Some(e) = self.read_only(key) {
            return Err(DecideError::Io(e));
        }
        let not_found = || DecideError::NotFound(key.to_string());
        let ws = self
            .ws_of_key(key)
            .ok_or_else(|| self.lost_or(key, not_found()))?;
        self.key_alone(&ws, key)?;
        let mut st = ws.lock();
        // Before anything is written: the folder may have been swapped under the daemon.
        if let Some(gone) = self.folder_gone(&ws) {
            return Err(gone);
        }
        let rec = st.records.get(key).ok_or_else(not_found)?;
        if let Some(d) = &rec.decision {
            return Err(DecideError::Conflict(Box::new(d.decision())));
        }
        if let Some(why) = st.unsure.get(key) {
            return Err(DecideError::Unsure(why.clone()));
        }
        // What is wrong with the handoff (none, gone, decided) is told first; then an approval
        // that names nothing it was read at, before a passkey assertion is spent on it.
        unbound_approval(key, &req)?;
        // Before any other rule: an assertion presented is spent, whatever refuses the
        // approval after, so it is never good twice.
        let step_up = match req.outcome {
            Outcome::Approved => self.step_up(&ws, rec, name, via, answer.as_ref())?,
            _ => None,
        };
        stale(&req, rec)?;
        let route = self.route_of(rec, &ws.workspace.name);
        if let Some(refused) = self.not_a_reviewer(&ws, rec, name, roles) {
            return Err(refused);
        }
        if req.outcome == Outcome::Approved {
            if let Some(refused) = self.approval_refused(&ws, rec, name, roles) {
                self.count_held(rec, route, name);
                return Err(refused);
            }
            let remark = Remark {
                comment: req.comment,
                edits,
                via,
                step_up,
            };
            let Some(asked) = grant else {
                let approved = self.approve(&ws, &mut st, key, route, name, roles, remark);
                return approved.map(|decided| (decided, None));
            };
            let grant = self.grant_for(&ws, rec, name, &asked)?;
            self.save_grant(&grant)?;
            let approved = self.approve(&ws, &mut st, key, route, name, roles, remark);
            // A grant comes with an approval that closed the handoff: one that only counted
            // towards a quorum or sign-off (grant_with_sign_off) approved nothing yet.
            let closed = matches!(approved, Ok(Decided::Closed(_)));
            if approved.is_ok() && !closed {
                tracing::info!(workspace = %ws.workspace.name, key, grant = %grant.id, "the approval left the handoff pending; its grant is revoked");
            }
            self.grant_settled(&ws, &grant, closed);
            return approved.map(|decided| (decided, closed.then_some(grant)));
        }
        let closing = Closing {
            to_agent,
            edits,
            via: Some(via),
            ..Closing::new(req.outcome, name.clone(), req.comment)
        };
        let closed = self.settle(&ws, &mut st, key, closing)?;
        Ok((Decided::Closed(closed), None))
    }

    /// The refusal of any decision by someone the handoff's route does not admit.
    fn not_a_reviewer(
        &self,
        ws: &Served,
        rec: &crate::app::state::Record,
        name: &str,
        roles: &[String],
    ) -> Option<DecideError> {
        if self.admits(rec, &ws.workspace.name, name, roles) {
            return None;
        }
        let route = self.route_of(rec, &ws.workspace.name);
        let on = route.map_or("any route".to_string(), |r| format!("route \"{}\"", r.name));
        Some(DecideError::Forbidden(format!(
            "{name} is not a reviewer on {on}"
        )))
    }

    /// Why `name` (holding `roles`) cannot approve the pending `rec` now, or `None` when an
    /// approval would be recorded. The one statement of the rules: `decide` refuses an
    /// approval by it, and the handoff page shows it where the Approve button would be.
    pub(in crate::app) fn approval_refused(
        &self,
        ws: &Served,
        rec: &crate::app::state::Record,
        name: &str,
        roles: &[String],
    ) -> Option<DecideError> {
        let route = self.route_of(rec, &ws.workspace.name);
        if let Some(d) = &rec.decision {
            return Some(DecideError::Conflict(Box::new(d.decision())));
        }
        if let Some(refused) = self.not_a_reviewer(ws, rec, name, roles) {
            return Some(refused);
        }
        if let Some(own) = self.own_work_refused(ws, rec, name) {
            return Some(own);
        }
        let changed = self.changed_artifacts(ws, &rec.meta.artifacts);
        if !changed.is_empty() {
            return Some(DecideError::ArtifactChanged(format!(
                "not approved: {}; the agent must submit the handoff again",
                changed.join("; ")
            )));
        }
        if let Some(held) = self.attention_refused(rec, route, name) {
            return Some(held);
        }
        let admin = self.builtin_admin(name);
        crate::app::review::quorum::gate(&Progress::of(route, rec), name, roles, admin).err()
    }

    /// The refusal of a change whose event could not be logged (`e`) once its commit was
    /// undone (`undone`): nothing recorded if the undo worked, else unknown (`unsure`).
    pub(in crate::app) fn not_logged(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        e: io::Error,
        undone: io::Result<()>,
    ) -> io::Error {
        match undone {
            Ok(()) => e,
            Err(undo) => {
                let why = format!(
                    "its event could not be logged ({e}) and its commit not undone ({undo})"
                );
                self.unsure(ws, st, key, why)
            }
        }
    }

    /// Holds `key` undecidable until its records are loaded again, and says why.
    pub(in crate::app) fn unsure(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        why: String,
    ) -> io::Error {
        tracing::error!(workspace = %ws.workspace.name, key, why, "a decision may have been recorded; the handoff is held until its records are read again");
        self.metrics().error("decision_unsure");
        st.unsure.insert(key.to_string(), why.clone());
        crate::app::model::Unsure::io(why)
    }

    /// Records the decision of a pending handoff: archive, root copy, state, event. Every
    /// decision's one way (a person's, a policy's, a timer's, a withdrawal): a failure that
    /// committed nothing is an error to try again; one whose outcome is unknown (the
    /// decision may be in the store, so the state, pending, may be wrong) holds the key, and
    /// nothing more is decided on it until the records are loaded again (`Unsure`). A
    /// decision a cluster's database is found to hold byte for byte was committed: it is
    /// logged and applied as if the commit had answered.
    pub(in crate::app) fn settle(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        closing: Closing,
    ) -> io::Result<Decision> {
        if let Some(why) = st.unsure.get(key) {
            return Err(crate::app::model::Unsure::io(why.clone()));
        }
        let recorded = self.decision_of(ws, st, key, closing)?;
        if let Err(e) = ws.commit(key, DECISION, &recorded.bytes) {
            match crate::app::review::records::commit_outcome(&e) {
                crate::app::review::records::CommitOutcome::Nothing => return Err(e),
                crate::app::review::records::CommitOutcome::Unknown => {
                    return Err(self.unsure(ws, st, key, format!("its commit failed: {e}")))
                }
                crate::app::review::records::CommitOutcome::ReadBack => {
                    let held = ws.store.read(&crate::store::Store::record(key, DECISION));
                    if !matches!(&held, Ok(Some(b)) if *b == recorded.bytes) {
                        return Err(self.unsure(ws, st, key, format!("its commit failed: {e}")));
                    }
                    tracing::warn!(workspace = %ws.workspace.name, key, error = %e, "a decision's commit reported a failure, and the store holds it: recorded");
                }
            }
        }
        if let Err(e) = self.emit(ws, recorded.event.clone()) {
            // Fail closed: a decision that is not in the audit log is not made.
            let undone = ws.uncommit(key, DECISION);
            return Err(self.not_logged(ws, st, key, e, undone));
        }
        Ok(self.close(ws, st, key, recorded))
    }

    /// The decision `closing` makes of a pending handoff and its event, not yet committed: for
    /// a caller that commits it with other files of the same transition.
    pub(in crate::app) fn decision_of(
        &self,
        ws: &Served,
        st: &WsState,
        key: &str,
        closing: Closing,
    ) -> io::Result<Recorded> {
        // Every decision's one way to its commit: none is made for a folder swapped away.
        self.folder_kept(ws, st, key)?;
        let rec = &st.records[key];
        let step_ups = step_ups(&closing, rec);
        let policy = made_by(&closing.by, closing.policy, self.is_agent(&closing.by));
        // Beside a person's decision, what the route's shadow policy would have made of it.
        let human = policy.as_deref() == Some("human");
        let shadow = human.then(|| self.shadow_of(ws, st, rec)).flatten();
        let attention = human.then(|| self.attention_of(&closing.by, rec));
        let decision = Decision {
            decision_version: DECISION_VERSION.into(),
            handoff_key: key.to_string(),
            task_id: rec.meta.task_id.clone(),
            outcome: closing.outcome,
            by: closing.by,
            at: now_rfc3339(),
            comment: closing.comment,
            errors: Vec::new(),
            sign_offs: rec.sign_offs.clone(),
            to_agent: closing.to_agent,
            edits: closing.edits,
            handoff_sha256: Some(rec.meta.digest.clone()),
            policy,
            shadow,
            receipt: None,
            attestation: None,
            attention,
            grant: closing.grant,
            step_up: closing.step_up,
            step_ups,
        };
        let decision = Decision {
            attestation: Some(self.attestation_for(ws, Some(rec), &decision)),
            ..decision
        };
        let bytes = json_bytes(&decision)?;
        // The revision and digest decided, and whether a person decided: a receiver told of
        // the decision can tell it from a later revision of the same key, and a policy's
        // approval from a person's, without reading the workspace.
        let mut data = json!({
            "task_id": decision.task_id, "outcome": decision.outcome, "by": decision.by, "comment": decision.comment,
            "to_agent": decision.to_agent, "instructions": decision.edits.instructions,
            "remaining": decision.edits.remaining, "revision": rec.meta.revision,
            "handoff_sha256": decision.handoff_sha256, "policy": decision.policy,
            // Who the daemon proved sent the revision decided: an A2A push config hears the
            // decision only when it is its setter's (`outbox::a2a_push`).
            "sender": self.proven_sender(rec, &ws.workspace.name),
        });
        if let Some(via) = closing.via {
            data["via"] = via.as_str().into();
        }
        if let Some(g) = &decision.grant {
            data["grant"] = json!(g);
        }
        if let Some(s) = &decision.step_up {
            data["step_up"] = json!(s);
        }
        if let Some(a) = &decision.attention {
            data["attention"] = json!(a);
        }
        let event = Event::new(
            EventType::HandoffDecided,
            &ws.workspace.name,
            Some(key),
            data,
        );
        Ok(Recorded {
            decision,
            bytes,
            event,
        })
    }

    /// A decision committed and logged: its copy, the state, the root answer, the metrics.
    pub(in crate::app) fn close(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: &str,
        recorded: Recorded,
    ) -> Decision {
        let Recorded {
            decision, bytes, ..
        } = recorded;
        let rec = st
            .records
            .get_mut(key)
            .expect("close is called for a known key");
        ws.publish(key, DECISION, Some(&bytes));
        rec.decision = Some(KeptDecision::of(&decision));
        if decision.outcome == Outcome::Approved {
            self.promote(ws, rec, &decision.by);
        }
        self.end_claim(ws, rec);
        self.attention_closed(rec, &decision);
        let held = crate::app::review::ingest::artifact_paths(&rec.handoff());
        let why = format!("handoff {key} {}", decision.outcome.as_str());
        self.release_holds(ws, key, &held, &why);
        rec.settle();
        // The root file answers the handoff.json in place, and only if it is this content.
        let in_place = st
            .current
            .as_ref()
            .is_some_and(|c| c.key == key && c.digest == rec.meta.digest);
        if in_place {
            if let Err(e) = write_json(&ws.workspace, &ws.workspace.decision_path(), &decision) {
                // The store holds the decision; forgetting the file makes the next
                // reconcile restore the root copy, which is asked for soon.
                st.current = None;
                self.common.intake.repair(&ws.workspace.root);
                self.metrics().error("write");
                tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot write decision.json");
            }
        }
        if st.pending.as_deref() == Some(key) {
            st.pending = None;
        }
        self.metrics().pending.dec();
        self.count_outcome(decision.outcome);
        decision
    }
}

/// What made a decision: the policy named, `human` for a person, nothing for the system's
/// (a route's timeout included) and for an agent's (`agent`: its withdrawal of its own handoff).
fn made_by(by: &str, policy: Option<String>, agent: bool) -> Option<String> {
    use super::timers::timeouts::BY as TIMEOUT;
    match policy {
        Some(p) => Some(p),
        None if agent || by == "system" || by == TIMEOUT || by.starts_with("policy:") => None,
        // A reviewer's grant: `decision.grant` names it and its granter.
        None if by.starts_with("grant:") => None,
        None => Some("human".into()),
    }
}

/// The passkey assertions of the approvals an approval decision counts (each approver's
/// own, recorded with their approval), the closing approver's included (an approver who asks
/// again to close adds no approval of their own); none for any other outcome.
fn step_ups(
    closing: &Closing,
    rec: &crate::app::state::Record,
) -> Vec<crate::contract::decision::ApproverStepUp> {
    if closing.outcome != Outcome::Approved {
        return Vec::new();
    }
    let asserted = |a: &crate::app::model::Approval| {
        a.step_up
            .clone()
            .map(|step_up| crate::contract::decision::ApproverStepUp {
                by: a.by.clone(),
                step_up,
            })
    };
    let mut all: Vec<_> = rec.review.approvals.iter().filter_map(asserted).collect();
    if let Some(step_up) = &closing.step_up {
        if !all.iter().any(|s| s.by == closing.by) {
            all.push(crate::contract::decision::ApproverStepUp {
                by: closing.by.clone(),
                step_up: step_up.clone(),
            });
        }
    }
    all
}
