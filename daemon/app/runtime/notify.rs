//! The app's side of the outbox: starting its workers, recording `notification.failed` when
//! a delivery goes dead, and the deliveries for the API and pages.

use crate::app::model::Progress;
use crate::app::App;
use crate::events::{Event, EventType};
use crate::outbox::{Delivery, Facts, Hooks, MailRequest, Recipient, RetryError, State};
use serde_json::json;
use std::sync::Arc;

impl App {
    /// Starts sending notifications (the daemon calls it once it serves; before that, events
    /// are only spooled).
    pub fn start_outbox(&self) {
        // Weak: the workers live as long as the process and must not keep the app alive.
        let weak = Arc::downgrade(&self.inner);
        let weak2 = weak.clone();
        let weak3 = weak.clone();
        self.inner.commit.outbox.start(Hooks {
            on_dead: Arc::new(move |d: &Delivery| {
                if let Some(inner) = weak.upgrade() {
                    App { inner }.notification_failed(d);
                }
            }),
            resolve: Arc::new(move |d: &Delivery| {
                let inner = weak2.upgrade()?;
                App { inner }.mail_request(d)
            }),
            push: Arc::new(move |d: &Delivery| {
                let inner = weak3.upgrade()?;
                App { inner }.push_request(d)
            }),
        });
    }

    /// What to mail about the handoff of an email notice, and to whom: the people with an
    /// `email` whose approval could move it on now (see `mailed`), never its sender. Nothing
    /// when the route does not notify `email`, the handoff is no longer pending, or its data
    /// class is not in `[smtp] classifications`.
    fn mail_request(&self, d: &Delivery) -> Option<MailRequest> {
        let key = d.key.as_deref()?;
        let ws = self.workspace(&d.workspace)?;
        let st = ws.lock();
        let rec = st.records.get(key).filter(|r| r.is_pending())?;
        let h = &rec.handoff();
        use crate::contract::handoff::Classification;
        let class = h.classification.unwrap_or(Classification::Internal);
        let smtp = self.config().smtp.as_ref()?;
        if !smtp.classifications.contains(&class) {
            return None;
        }
        let route = self.cx().route_of(rec, &d.workspace)?;
        if !route.notify.iter().any(|n| n == crate::outbox::EMAIL) {
            return None;
        }
        let progress = Progress::of(Some(route), rec);
        // A handoff the route assigned is the assignee's alone until it moves on.
        let assignee = rec
            .claimed()
            .filter(|c| c.assigned.is_some())
            .map(|c| &c.by);
        let mut to: Vec<Recipient> = Vec::new();
        let ttl = route.action_link_ttl_s();
        for u in &self.config().users {
            let Some(addr) = u.email.as_deref() else {
                continue;
            };
            if assignee.is_none_or(|a| *a == u.name)
                && crate::app::review::assign::moves_on(route, rec, &progress, u)
                && !self.cx().is_sender(h, &d.workspace, &u.name)
                && !to.iter().any(|t| t.address.eq_ignore_ascii_case(addr))
            {
                let links = self.action_tokens(&u.name, key, rec.meta.revision, ttl);
                to.push(Recipient {
                    address: addr.to_string(),
                    links,
                });
            }
        }
        let thin = matches!(
            class,
            Classification::Confidential | Classification::Restricted
        );
        let facts = Facts {
            event: d.event.clone(),
            workspace: d.workspace.clone(),
            key: key.to_string(),
            title: h.title.clone(),
            trigger: h.trigger.map(|t| t.as_str().to_string()),
            from_agent: h.from_agent.clone(),
            summary: h.summary.clone().filter(|_| !thin),
            route: Some(route.name.clone()),
            revision: rec.meta.revision,
        };
        Some(MailRequest { facts, to })
    }

    fn notification_failed(&self, d: &Delivery) {
        let Some(ws) = self.workspace(&d.workspace) else {
            tracing::warn!(delivery = %d.id, workspace = %d.workspace, "dead delivery of a workspace no longer watched");
            return;
        };
        let last = d.attempts.last();
        let data = json!({
            "delivery": d.id, "channel": d.channel, "event": d.event,
            "attempts": d.attempts.len(),
            "status": last.and_then(|a| a.status), "error": last.and_then(|a| a.error.clone()),
        });
        let event = Event::new(
            EventType::NotificationFailed,
            &d.workspace,
            d.key.as_deref(),
            data,
        );
        if let Err(e) = self.cx().emit(&ws, event) {
            tracing::error!(delivery = %d.id, error = %e, "cannot log notification.failed");
        }
    }

    /// Deliveries in `state` (all when `None`), newest first: up to `limit` after the one
    /// with id `after` (the last of the page before).
    pub fn deliveries(
        &self,
        state: Option<State>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>, crate::outbox::PageError> {
        self.inner.commit.outbox.list(state, after, limit)
    }

    /// Endpoints their receivers disabled (`410 Gone`): name -> when and why.
    pub fn disabled_endpoints(&self) -> Vec<(String, String)> {
        self.inner.commit.outbox.disabled()
    }

    /// Sends a dead delivery again (admins only; the caller checks).
    pub fn retry_delivery(&self, id: &str) -> Result<Delivery, RetryError> {
        self.inner.commit.outbox.retry(id)
    }
}
