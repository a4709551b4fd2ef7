//! The app's side of Web Push: who is owed a push about a handoff and what it says (asked by
//! the outbox's push worker), and reviewers' own subscriptions (the API the reviewers page's
//! script calls). Pushes go to the people whose decision could move the handoff on now (as
//! mails do), never to its sender, and only on routes with `push`: `urgent` (critical_action
//! and error handoffs, and escalations) or `all`.

use crate::app::model::Progress;
use crate::app::App;
use crate::auth::Actor;
use crate::contract::handoff::{Classification, Trigger};
use crate::events::EventType;
use crate::metrics::OutcomeLabel;
use crate::outbox::{Delivery, PushRequest};
use crate::push::{Payload, SubscribeError, Subscription};
use crate::routing::PushMode;

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
    fn push_count(&self, outcome: &str) {
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

    /// The VAPID public key browsers subscribe with (`applicationServerKey`).
    pub fn push_key(&self) -> Result<String, PushError> {
        Ok(self.push_core()?.key.public())
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
        let id = if which.starts_with("sub_") {
            which.to_string()
        } else {
            crate::push::store::id_of(which)
        };
        match push.subscriptions.remove(Some(name), &id)? {
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
        let subs = push.subscriptions.of(name);
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
        let reviewers: Vec<String> = self
            .config()
            .users
            .iter()
            .filter(|u| {
                assignee.is_none_or(|a| *a == u.name)
                    && crate::app::review::assign::moves_on(route, rec, &progress, u)
                    && !self.cx().is_sender(h, &d.workspace, &u.name)
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
        };
        Some(PushRequest { payload, reviewers })
    }
}
