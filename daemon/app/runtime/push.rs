//! The app's side of Web Push: who is owed a push about a handoff and what it says (asked by
//! the outbox's push worker), and reviewers' own subscriptions (the API the reviewers page's
//! script calls). Pushes go to the people whose decision could move the handoff on now (as
//! mails do), never to its sender, and only on routes with `push`: `urgent` (critical_action
//! and error handoffs, and escalations) or `all`.
//!
//! Each reviewer's notification carries Approve and Reject actions, each a one-time push
//! token (`login/links.rs`, channel push: reviewer, key, revision, outcome, expiry; a used one
//! remembered by its SHA-256 only). The service worker posts the token with the browser's
//! session (`push_act`): it decides only when that session is the token's reviewer's, through
//! `Cx::decide_via` with every rule of the page, recorded `via: "push"`. A route that asks
//! approvals for a passkey gets no Approve action (the tap opens the page).

use crate::app::model::{DecideError, Decided, Progress};
use crate::app::{App, DecisionRequest};
use crate::auth::Actor;
use crate::clock::now_s;
use crate::contract::decision::Via;
use crate::contract::handoff::{Classification, Trigger};
use crate::contract::Outcome;
use crate::events::EventType;
use crate::login::links::{Channel, Link, LinkKey, LinkOutcome};
use crate::metrics::OutcomeLabel;
use crate::outbox::{Delivery, PushRequest};
use crate::push::{Action, Payload, SubscribeError, Subscription};
use crate::routing::PushMode;
use std::net::IpAddr;
use std::time::Duration;

/// What a key must have escaped to be one path segment (RFC 3986 unreserved stay as is), as
/// in the mails' and webhooks' links.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Longest notification body: lock screens show a few lines.
const MAX_BODY: usize = 240;

/// Why a subscription call does nothing.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("Web Push is off on this daemon: the operator sets [push] subject = \"mailto:...\" and push = \"urgent\" on routes (see docs/reviewers.md)")]
    Off,
    #[error("only people subscribe to pushes (this token is an agent's)")]
    NotPerson,
    #[error("no subscription {0} of yours")]
    NotFound(String),
    #[error(transparent)]
    Invalid(#[from] SubscribeError),
    #[error("cannot keep push subscriptions now ({0}); try again in a moment")]
    Io(#[from] std::io::Error),
}

/// Why a notification's action decides nothing.
#[derive(Debug, thiserror::Error)]
pub enum PushActError {
    #[error("this browser is not signed in to baton, so nothing was decided; sign in, then act from the handoff's page")]
    NoSession,
    #[error("this action is not one baton made (cut short, changed, or another daemon's); nothing was decided. Open the handoff in baton")]
    Invalid,
    #[error("too many actions that were not baton's came from your address; try again in {} minutes", .0.as_secs().div_ceil(60))]
    Throttled(Duration),
    #[error("this notification was for {reviewer}, and {you} is signed in to this browser; nothing was decided. Sign in as {reviewer}, or decide on the handoff's page")]
    NotYours { reviewer: String, you: String },
    #[error("this notification's actions expired; nothing was decided. Open the handoff in baton to decide it")]
    Expired,
    #[error("this action was already used; it decides nothing more. Open the handoff to see its decision")]
    Used,
    #[error("the handoff was revised since this notification (it was about revision {pushed}, revision {current} is in place); nothing was decided. Open it to read the new revision")]
    Revised { pushed: u32, current: u32 },
    #[error("this handoff is already decided ({outcome} by {by} at {at})")]
    Decided {
        outcome: &'static str,
        by: String,
        at: String,
    },
    #[error("your approval of this revision is already recorded; the handoff waits for the other approvals or sign-offs it needs")]
    AlreadyApproved,
    #[error("{0} is no longer a reviewer here; nothing was decided")]
    UnknownReviewer(String),
    #[error("the handoff is no longer here (withdrawn, or its workspace is gone)")]
    Gone,
    #[error("{}", super::links::OTHER_CONTENT)]
    OtherContent,
    #[error("not decided: {0}")]
    Refused(DecideError),
    #[error("cannot read or keep push actions now ({0}); try again in a moment")]
    Io(#[from] std::io::Error),
}

impl PushActError {
    /// Its name in `baton_push_total{outcome}` (`action_` and this) and in the answer.
    pub fn kind(&self) -> &'static str {
        match self {
            PushActError::NoSession => "no_session",
            PushActError::Invalid => "invalid",
            PushActError::Throttled(_) => "throttled",
            PushActError::NotYours { .. } => "not_yours",
            PushActError::Expired => "expired",
            PushActError::Used => "used",
            PushActError::Revised { .. } => "revised",
            PushActError::Decided { .. } => "decided_before",
            PushActError::AlreadyApproved => "approved_before",
            PushActError::UnknownReviewer(_) => "unknown_reviewer",
            PushActError::Gone => "gone",
            PushActError::OtherContent => "other_content",
            PushActError::Refused(_) => "refused",
            PushActError::Io(_) => "io",
        }
    }
}

/// A decision taken from a notification.
#[derive(Debug)]
pub struct PushActed {
    pub key: String,
    pub outcome: LinkOutcome,
    pub decided: Decided,
}

/// A subscription as its owner sees it (the browser's keys are not shown again).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriptionView {
    pub id: String,
    /// The push service's origin (the rest of the URL is the browser's secret).
    pub service: String,
    pub created_at: String,
}

impl From<&Subscription> for SubscriptionView {
    fn from(s: &Subscription) -> Self {
        let service = url::Url::parse(&s.endpoint)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        SubscriptionView {
            id: s.id.clone(),
            service,
            created_at: s.created_at.clone(),
        }
    }
}

impl App {
    /// Counts `outcome` in `baton_push_total{outcome}`.
    pub(super) fn push_count(&self, outcome: &str) {
        let label = OutcomeLabel {
            outcome: outcome.into(),
        };
        self.metrics().push.get_or_create(&label).inc();
    }

    fn push_core(&self) -> Result<&crate::push::Push, PushError> {
        self.inner
            .commit
            .outbox
            .push()
            .map(|p| p.as_ref())
            .ok_or(PushError::Off)
    }

    /// Why Web Push is off though `[push]` is set (its VAPID key cannot be read), if so: for
    /// `/healthz`. Read now, so a mended key is seen at once.
    pub fn push_key_damage(&self) -> Option<crate::push::Damage> {
        self.push_core().ok()?.key.damage()
    }

    /// The VAPID public key browsers subscribe with (`applicationServerKey`).
    pub fn push_key(&self) -> Result<String, PushError> {
        Ok(self.push_core()?.key.public()?)
    }

    /// Keeps a browser's subscription for the person calling.
    pub fn push_subscribe(
        &self,
        actor: &Actor,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<SubscriptionView, PushError> {
        let Actor::Reviewer { name, .. } = actor else {
            return Err(PushError::NotPerson);
        };
        let push = self.push_core()?;
        let sub = push.subscription(name, endpoint, p256dh, auth)?;
        let view = SubscriptionView::from(&sub);
        push.subscriptions.put(sub)?;
        self.push_count("subscribed");
        tracing::info!(reviewer = %name, subscription = %view.id, service = %view.service, "push subscription kept");
        Ok(view)
    }

    /// Forgets one of the caller's subscriptions, by id or by endpoint.
    pub fn push_unsubscribe(&self, actor: &Actor, which: &str) -> Result<(), PushError> {
        let Actor::Reviewer { name, .. } = actor else {
            return Err(PushError::NotPerson);
        };
        let push = self.push_core()?;
        // An endpoint is the subscription itself; an id is the handle the page lists.
        use crate::push::store::Which;
        let (which, id) = match which.starts_with("sub_") {
            true => (Which::Id(which), which.to_string()),
            false => (Which::Endpoint(which), crate::push::store::id_of(which)),
        };
        match push.subscriptions.remove(Some(name), which)? {
            Some(_) => {
                self.push_count("unsubscribed");
                tracing::info!(reviewer = %name, subscription = %id, "push subscription removed by its owner");
                Ok(())
            }
            None => Err(PushError::NotFound(id)),
        }
    }

    /// The caller's subscriptions, oldest first (none while pushes are off).
    pub fn push_subscriptions(&self, actor: &Actor) -> Result<Vec<SubscriptionView>, PushError> {
        let Actor::Reviewer { name, .. } = actor else {
            return Err(PushError::NotPerson);
        };
        let Ok(push) = self.push_core() else {
            return Ok(Vec::new());
        };
        let subs = push.subscriptions.of(name)?;
        Ok(subs.iter().map(SubscriptionView::from).collect())
    }

    /// What to push about the handoff of a push notice, and to whom; nothing when its route
    /// asks for no pushes of this kind, or the handoff is no longer pending.
    pub(in crate::app) fn push_request(&self, d: &Delivery) -> Option<PushRequest> {
        let key = d.key.as_deref()?;
        let ws = self.workspace(&d.workspace)?;
        let st = ws.lock();
        let rec = st.records.get(key).filter(|r| r.is_pending())?;
        let h = &rec.handoff();
        let route = self.cx().route_of(rec, &d.workspace)?;
        let urgent_trigger = matches!(h.trigger, Some(Trigger::CriticalAction | Trigger::Error));
        let escalated = d.event == EventType::HandoffEscalated.as_str();
        let owed = match route.push? {
            PushMode::All => true,
            PushMode::Urgent => urgent_trigger || escalated,
        };
        if !owed {
            return None;
        }
        let progress = Progress::of(Some(route), rec);
        // A handoff the route assigned is the assignee's alone until it moves on.
        let assignee = rec
            .claimed()
            .filter(|c| c.assigned.is_some())
            .map(|c| &c.by);
        // The proven sender, never `from_agent`: a forged one must not silence a reviewer.
        let proven = self.cx().proven_sender(rec, &d.workspace);
        let reviewers: Vec<String> = self
            .config()
            .users
            .iter()
            .filter(|u| {
                assignee.is_none_or(|a| *a == u.name)
                    && crate::app::review::assign::moves_on(route, rec, &progress, u)
                    && !self.cx().is_proven(proven.as_deref(), &u.name)
            })
            .map(|u| u.name.clone())
            .collect();
        let thin = matches!(
            h.classification,
            Some(Classification::Confidential | Classification::Restricted)
        );
        let what = h.title.clone().unwrap_or_else(|| key.to_string());
        let title = if escalated {
            format!("Escalated: {what}")
        } else if d.event == EventType::HandoffRevised.as_str() {
            format!("Revised: {what}")
        } else {
            format!("To review: {what}")
        };
        let trigger = h.trigger.map_or("handoff", Trigger::as_str);
        let mut body = format!("{trigger} from {} in {}", h.from_agent, d.workspace);
        if let Some(summary) = h.summary.as_deref().filter(|_| !thin) {
            body = format!("{body}: {summary}");
        }
        if body.chars().count() > MAX_BODY {
            body = body.chars().take(MAX_BODY - 1).collect::<String>() + "…";
        }
        let enc = percent_encoding::utf8_percent_encode(key, PATH_SEGMENT);
        let payload = Payload {
            title,
            body,
            url: format!("{}/handoffs/{enc}", self.config().public_url),
            key: key.to_string(),
            workspace: d.workspace.clone(),
            urgency: if urgent_trigger || escalated {
                "high"
            } else {
                "normal"
            }
            .into(),
            actions: Vec::new(),
        };
        // Approving where the route asks for a passkey takes the page: no Approve button.
        let passkey = crate::app::review::step_up::asks_passkey(Some(route));
        let offered: &[LinkOutcome] = if passkey {
            &[LinkOutcome::Rejected]
        } else {
            &[LinkOutcome::Approved, LinkOutcome::Rejected]
        };
        let signer = self
            .action_link_key()
            .map_err(|e| tracing::error!(error = %e, "cannot read the action links' key; pushes go out without actions"))
            .ok();
        let revision = (rec.meta.revision, rec.meta.digest.as_str());
        let to = reviewers
            .into_iter()
            .map(|reviewer| {
                let mut mine = payload.clone();
                if let Some(signer) = &signer {
                    mine.actions = actions(signer, &reviewer, key, revision, offered);
                }
                (reviewer, mine)
            })
            .collect();
        Some(PushRequest { to })
    }

    /// Decides with a notification's action: `token` as the service worker posts it, from a
    /// browser whose session is `signed_in`'s (`None`: no session). Decides only when that
    /// session is the token's reviewer's, through the one decision path; the token is then
    /// used. Counted in `baton_push_total{outcome}` (`acted`, or `action_` and why not).
    pub fn push_act(
        &self,
        token: &str,
        signed_in: Option<&Actor>,
        addr: Option<IpAddr>,
    ) -> Result<PushActed, PushActError> {
        let acted = self.act_from_push(token, signed_in, addr);
        self.count_push_act(&acted);
        acted
    }

    /// `push_act`, for an action another node read from its token (`CheckedLink`), as the
    /// session that node checked: the same checks, the same used mark, the same decision path.
    pub fn push_act_checked(
        &self,
        checked: &super::links::CheckedLink,
        signed_in: Option<&Actor>,
    ) -> Result<PushActed, PushActError> {
        let acted = match signed_in {
            Some(Actor::Reviewer { name: you, .. }) if checked.channel == Channel::Push => {
                self.act_on_push(checked, you)
            }
            Some(Actor::Reviewer { .. }) => Err(PushActError::Invalid),
            _ => Err(PushActError::NoSession),
        };
        self.count_push_act(&acted);
        acted
    }

    fn count_push_act(&self, acted: &Result<PushActed, PushActError>) {
        match acted {
            Ok(a) => {
                self.push_count("acted");
                tracing::info!(key = %a.key, outcome = a.outcome.as_str(), "decided from a push notification");
            }
            Err(e) => {
                self.push_count(&format!("action_{}", e.kind()));
                tracing::warn!(refused = e.kind(), error = %e, "a push notification's action decided nothing");
            }
        }
    }

    fn act_from_push(
        &self,
        token: &str,
        signed_in: Option<&Actor>,
        addr: Option<IpAddr>,
    ) -> Result<PushActed, PushActError> {
        // A session alone decides nothing (there is no token), nor a token alone.
        let Some(Actor::Reviewer { name: you, .. }) = signed_in else {
            return Err(PushActError::NoSession);
        };
        let logins = &self.inner.access.logins;
        if let Some(wait) = logins.link_wait(addr) {
            return Err(PushActError::Throttled(wait));
        }
        let Ok(link) = self.action_link_key()?.read_for(Channel::Push, token) else {
            logins.link_failed(addr);
            return Err(PushActError::Invalid);
        };
        let checked = super::links::CheckedLink {
            channel: Channel::Push,
            link,
            token_sha256: crate::login::links::Used::hash(token),
        };
        self.act_on_push(&checked, you)
    }

    /// Decides with the push action `checked` as the reviewer `you` is signed in as.
    fn act_on_push(
        &self,
        checked: &super::links::CheckedLink,
        you: &str,
    ) -> Result<PushActed, PushActError> {
        let link = checked.link.clone();
        let hash = checked.token_sha256.as_str();
        if link.reviewer != *you {
            return Err(PushActError::NotYours {
                reviewer: link.reviewer,
                you: you.to_string(),
            });
        }
        if now_s() > link.expires {
            return Err(PushActError::Expired);
        }
        // The same marks as mail links', the same on every node of a cluster.
        let used = self.used_links();
        if used.is_marked(hash)? {
            return Err(PushActError::Used);
        }
        // The reviewer as configured now (roles may have changed since the push).
        let user = self.config().users.iter().find(|u| u.name == link.reviewer);
        let Some(user) = user else {
            return Err(PushActError::UnknownReviewer(link.reviewer));
        };
        let actor = Actor::Reviewer {
            name: user.name.clone(),
            roles: user.roles.clone(),
        };
        {
            let ws = self.cx().ws_of_key(&link.key).ok_or(PushActError::Gone)?;
            let st = ws.lock();
            let rec = st.records.get(&link.key).ok_or(PushActError::Gone)?;
            super::links::still_open(&link, rec)?;
        }
        let outcome = match link.outcome {
            LinkOutcome::Approved => Outcome::Approved,
            LinkOutcome::ChangesRequested => Outcome::ChangesRequested,
            LinkOutcome::Rejected => Outcome::Rejected,
        };
        let request = DecisionRequest {
            outcome,
            comment: None,
            // Decide what the notification was about: a newer revision in place refuses it.
            revision: Some(link.revision),
            handoff_sha256: link.digest.clone(),
            to_agent: None,
            edits: Default::default(),
        };
        // Taken before deciding, under its document's lock, as a mail link's: of two uses at
        // once (two nodes) one decides; taken back when nothing was decided.
        if !used.mark(hash, link.expires, now_s())? {
            return Err(PushActError::Used);
        }
        let decided = self
            .cx()
            .decide_via(&link.key, request, &actor, Via::Push)
            .map_err(|e| match e {
                DecideError::Stale { revision, .. } => PushActError::Revised {
                    pushed: link.revision,
                    current: revision,
                },
                DecideError::NotFound(_) => PushActError::Gone,
                e => PushActError::Refused(e),
            });
        if decided.is_err() {
            if let Err(e) = used.unmark(hash) {
                tracing::error!(error = %e, key = %link.key, "cannot take back the mark of a push action that decided nothing; the action stays used");
            }
        }
        let decided = decided?;
        Ok(PushActed {
            key: link.key,
            outcome: link.outcome,
            decided,
        })
    }
}

/// `reviewer`'s buttons for `key` at `revision`: one push token per outcome offered, good for
/// as long as the push service keeps the push.
fn actions(
    signer: &LinkKey,
    reviewer: &str,
    key: &str,
    (revision, digest): (u32, &str),
    offered: &[LinkOutcome],
) -> Vec<Action> {
    let expires = now_s().saturating_add(crate::push::message::TTL_S);
    offered
        .iter()
        .map(|&outcome| {
            let link = Link {
                reviewer: reviewer.to_string(),
                key: key.to_string(),
                revision,
                outcome,
                digest: Some(digest.to_string()),
                expires,
            };
            Action {
                action: match outcome {
                    LinkOutcome::Approved => "approve",
                    LinkOutcome::ChangesRequested => "request_changes",
                    LinkOutcome::Rejected => "reject",
                }
                .into(),
                title: outcome.label().into(),
                token: signer.mint_for(Channel::Push, &link),
            }
        })
        .collect()
}

impl From<super::links::MovedOn> for PushActError {
    fn from(m: super::links::MovedOn) -> PushActError {
        use super::links::MovedOn;
        match m {
            MovedOn::Revised { was, current } => PushActError::Revised {
                pushed: was,
                current,
            },
            MovedOn::Decided { outcome, by, at } => PushActError::Decided { outcome, by, at },
            MovedOn::AlreadyApproved => PushActError::AlreadyApproved,
            MovedOn::OtherContent => PushActError::OtherContent,
        }
    }
}
