//! Events: every state change of the daemon, as written to `.baton/events.jsonl`, streamed on
//! SSE and sent to webhooks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event names of SPEC section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "handoff.received")]
    HandoffReceived,
    #[serde(rename = "handoff.revised")]
    HandoffRevised,
    #[serde(rename = "handoff.invalid")]
    HandoffInvalid,
    #[serde(rename = "handoff.claimed")]
    HandoffClaimed,
    /// baton extension: a claim ended without a decision (released by its holder or an admin).
    #[serde(rename = "handoff.unclaimed")]
    HandoffUnclaimed,
    #[serde(rename = "handoff.decided")]
    HandoffDecided,
    /// baton extension: an approval that signed no role left the handoff pending (a quorum of
    /// `min_approvals` is not reached yet).
    #[serde(rename = "handoff.partially_approved")]
    HandoffPartiallyApproved,
    /// baton extension: one role of a `sign_off` gate approved; the handoff stays pending.
    #[serde(rename = "handoff.signed_off")]
    HandoffSignedOff,
    #[serde(rename = "handoff.escalated")]
    HandoffEscalated,
    #[serde(rename = "checkpoint.written")]
    CheckpointWritten,
    #[serde(rename = "agent.stalled")]
    AgentStalled,
    #[serde(rename = "lock.acquired")]
    LockAcquired,
    #[serde(rename = "lock.released")]
    LockReleased,
    #[serde(rename = "lock.expired")]
    LockExpired,
    #[serde(rename = "approved.tampered")]
    ApprovedTampered,
    /// baton extension: an approval copied the handoff's artifacts into `approved/`.
    #[serde(rename = "approved.promoted")]
    ApprovedPromoted,
    #[serde(rename = "notification.failed")]
    NotificationFailed,
    /// A checkpoint file that is not a valid checkpoint (its problems in `data.errors`).
    #[serde(rename = "checkpoint.invalid")]
    CheckpointInvalid,
    /// The audit log was found changed behind the daemon; a new chain starts with this event.
    #[serde(rename = "audit.broken")]
    AuditBroken,
    /// baton extension: a late write of a node that had lost the workspace's lease (paused
    /// between its fence check and its write) was found and set aside as recovery, not
    /// tampering (`data.file`: the audit log or the published copy; `data.text`,
    /// `data.evidence`).
    #[serde(rename = "audit.late_write")]
    AuditLateWrite,
    /// A daemon record in the workspace was found forged or changed; it was set aside.
    #[serde(rename = "workspace.tampered")]
    WorkspaceTampered,
    /// baton extension: a workspace's owner was taken or handed on.
    #[serde(rename = "workspace.owner_changed")]
    WorkspaceOwnerChanged,
    /// baton extension: a workspace's folder was moved (renamed); it keeps its records.
    #[serde(rename = "workspace.moved")]
    WorkspaceMoved,
    /// baton extension: a workspace's folder was deleted and made again at its path; the new
    /// folder is served as a new workspace (the old one's records stay in data_dir).
    #[serde(rename = "workspace.recreated")]
    WorkspaceRecreated,
    /// baton extension: a served workspace's folder was deleted or moved out of the roots
    /// while the daemon ran (`data.path`, `data.id`, `data.pending`): it is no longer served,
    /// its records stay in data_dir. Told to subscribers, not logged (the folder's audit log
    /// went with it).
    #[serde(rename = "workspace.removed")]
    WorkspaceRemoved,
    /// baton extension: a workspace whose whole store was gone was started afresh by `baton
    /// repair --afresh` (`data.by`: the OS user who ran it, `data.uid`, `data.store`,
    /// `data.set_aside`: where its published copies went, if any).
    #[serde(rename = "workspace.started_afresh")]
    WorkspaceStartedAfresh,
    /// baton extension: the handoff was listed in a reviewer's digest mail (`data.reviewer`,
    /// `data.count`: the handoffs the digest listed in all, `data.delivery`).
    #[serde(rename = "digest.sent")]
    DigestSent,
    /// baton extension: a reviewer's digest cadence was chosen on `/reviewers`
    /// (`data.reviewer`, `data.by`, `data.every_min`, `data.was_min`); about no workspace,
    /// told to people's streams only.
    #[serde(rename = "digest.cadence_changed")]
    DigestCadenceChanged,
    /// baton extension: a reviewer granted auto-approval of handoffs like one they approved.
    #[serde(rename = "grant.created")]
    GrantCreated,
    /// baton extension: a grant was revoked; it approves nothing more.
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    /// baton extension: a canary (a known-bad example handoff) was filed into a reviewer's
    /// queue (`data.example`); logged in its canary place, never sent anywhere.
    #[serde(rename = "canary.filed")]
    CanaryFiled,
    /// baton extension: a reviewer rejected or sent back a canary (`data.reviewer`).
    #[serde(rename = "canary.caught")]
    CanaryCaught,
    /// baton extension: a reviewer approved a canary (`data.reviewer`, `data.why`).
    #[serde(rename = "canary.missed")]
    CanaryMissed,
    /// baton extension: a reviewer registered a passkey (`data.reviewer`, `data.credential`);
    /// broadcast to subscribers, not in any workspace's log (it is about no workspace).
    #[serde(rename = "passkey.registered")]
    PasskeyRegistered,
    /// baton extension: a reviewer's passkey confirmed an approval of this handoff revision
    /// on a `step_up = "passkey"` route (`data.by`, `data.credential`, `data.revision`).
    #[serde(rename = "passkey.asserted")]
    PasskeyAsserted,
    /// baton extension: an admin linked a chat account to a person (`data.chat_user`,
    /// `data.user`, `data.by`); about no workspace, told to people's streams only.
    #[serde(rename = "chat.account_linked")]
    ChatAccountLinked,
    /// baton extension: an admin unlinked a chat account (`data.chat_user`, `data.user`,
    /// `data.by`): its clicks decide nothing from then on.
    #[serde(rename = "chat.account_unlinked")]
    ChatAccountUnlinked,
    /// baton extension: a Slack user confirmed from Slack an admin's link of its account
    /// (`data.chat_user`, `data.user`, `data.linked_by`): its clicks decide from then on.
    #[serde(rename = "chat.account_confirmed")]
    ChatAccountConfirmed,
    /// baton extension: a Slack user answered "Not me" to an admin's link of its account
    /// (`data.chat_user`, `data.user`, `data.linked_by`): the link is removed.
    #[serde(rename = "chat.account_refused")]
    ChatAccountRefused,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::HandoffReceived => "handoff.received",
            EventType::HandoffRevised => "handoff.revised",
            EventType::HandoffInvalid => "handoff.invalid",
            EventType::HandoffClaimed => "handoff.claimed",
            EventType::HandoffUnclaimed => "handoff.unclaimed",
            EventType::HandoffDecided => "handoff.decided",
            EventType::HandoffPartiallyApproved => "handoff.partially_approved",
            EventType::HandoffSignedOff => "handoff.signed_off",
            EventType::HandoffEscalated => "handoff.escalated",
            EventType::CheckpointWritten => "checkpoint.written",
            EventType::AgentStalled => "agent.stalled",
            EventType::LockAcquired => "lock.acquired",
            EventType::LockReleased => "lock.released",
            EventType::LockExpired => "lock.expired",
            EventType::ApprovedTampered => "approved.tampered",
            EventType::ApprovedPromoted => "approved.promoted",
            EventType::NotificationFailed => "notification.failed",
            EventType::CheckpointInvalid => "checkpoint.invalid",
            EventType::AuditBroken => "audit.broken",
            EventType::AuditLateWrite => "audit.late_write",
            EventType::WorkspaceTampered => "workspace.tampered",
            EventType::WorkspaceOwnerChanged => "workspace.owner_changed",
            EventType::WorkspaceMoved => "workspace.moved",
            EventType::WorkspaceRecreated => "workspace.recreated",
            EventType::WorkspaceRemoved => "workspace.removed",
            EventType::WorkspaceStartedAfresh => "workspace.started_afresh",
            EventType::DigestSent => "digest.sent",
            EventType::DigestCadenceChanged => "digest.cadence_changed",
            EventType::GrantCreated => "grant.created",
            EventType::GrantRevoked => "grant.revoked",
            EventType::PasskeyRegistered => "passkey.registered",
            EventType::PasskeyAsserted => "passkey.asserted",
            EventType::ChatAccountLinked => "chat.account_linked",
            EventType::ChatAccountUnlinked => "chat.account_unlinked",
            EventType::ChatAccountConfirmed => "chat.account_confirmed",
            EventType::ChatAccountRefused => "chat.account_refused",
            EventType::CanaryFiled => "canary.filed",
            EventType::CanaryCaught => "canary.caught",
            EventType::CanaryMissed => "canary.missed",
        }
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: EventType,
    /// RFC 3339, UTC.
    pub at: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub data: Value,
}

/// Longest string kept in event data. Events go to every SSE client's queue, the audit log and
/// webhooks; a summary or comment of 64 KiB (escaped to far more) belongs in the handoff, which
/// the event names by key, not in each copy of the event.
pub const MAX_EVENT_STRING: usize = 1024;

impl Event {
    pub fn new(kind: EventType, workspace: &str, key: Option<&str>, mut data: Value) -> Event {
        clip_strings(&mut data);
        // An absent field (no title, no comment) is left out, never written as `null`.
        if let Value::Object(map) = &mut data {
            map.retain(|_, v| !v.is_null());
        }
        Event {
            kind,
            at: crate::clock::now_rfc3339(),
            workspace: workspace.to_string(),
            key: key.map(str::to_string),
            data,
        }
    }
}

fn clip_strings(value: &mut Value) {
    match value {
        Value::String(s) if s.len() > MAX_EVENT_STRING => {
            let mut end = MAX_EVENT_STRING;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
            s.push('…');
        }
        Value::Array(items) => items.iter_mut().for_each(clip_strings),
        Value::Object(map) => map.values_mut().for_each(clip_strings),
        _ => {}
    }
}
