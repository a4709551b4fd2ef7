//! The app's side of the outbox: starting its workers, recording `notification.failed` when
//! a delivery goes dead, and the deliveries for the API and pages.

use crate::app::model::Progress;
use crate::app::state::Record;
use crate::app::App;
use crate::events::{Event, EventType};
use crate::outbox::{Delivery, Facts, Hooks, MailRequest, Recipient, RetryError, State};
use crate::routing::{Route, User};
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
        let weak4 = weak.clone();
        self.inner.commit.outbox.start(Hooks {
            on_dead: Arc::new(move |d: &Delivery| {
                if let Some(inner) = weak.upgrade() {
                    App { inner }.notification_failed(d);
                }
            }),
            on_delivered: Arc::new(move |d: &Delivery| {
                if let Some(inner) = weak4.upgrade() {
                    App { inner }.notification_delivered(d);
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
        let route = self.mailed_route(rec, &d.workspace)?;
        let mut to: Vec<Recipient> = Vec::new();
        // On a digest route, what is not urgent waits for the reviewers' digests.
        let digested = route.digest && super::digests::waits_for_digest(&d.event, h);
        for u in &self.config().users {
            let Some(addr) = u.email.as_deref() else {
                continue;
            };
            if !digested
                && self.mailed_to(rec, route, &d.workspace, u)
                && !to.iter().any(|t| t.address.eq_ignore_ascii_case(addr))
            {
                let links =
                    self.action_tokens(&u.name, key, (rec.meta.revision, &rec.meta.digest), route);
                to.push(Recipient {
                    address: addr.to_string(),
                    links,
                });
            }
        }
        let facts = self.mail_facts(rec, &d.workspace, route, &d.event);
        Some(MailRequest { facts, to })
    }

    /// What a mail says of `rec` in `ws` on `route`, about `event`: no summary for
    /// confidential and restricted handoffs (a mail leaves baton's control).
    pub(in crate::app) fn mail_facts(
        &self,
        rec: &Record,
        ws: &str,
        route: &Route,
        event: &str,
    ) -> Facts {
        use crate::contract::handoff::Classification;
        let h = rec.handoff();
        let thin = matches!(
            h.classification,
            Some(Classification::Confidential | Classification::Restricted)
        );
        Facts {
            event: event.to_string(),
            workspace: ws.to_string(),
            key: rec.meta.key.clone(),
            title: h.title.clone(),
            trigger: h.trigger.map(|t| t.as_str().to_string()),
            from_agent: h.from_agent.clone(),
            summary: h.summary.clone().filter(|_| !thin),
            route: Some(route.name.clone()),
            revision: rec.meta.revision,
        }
    }

    /// The route of pending `rec` in `ws` if it mails its reviewers: it notifies `email`,
    /// `[smtp]` is set and the handoff's data class is in `[smtp] classifications`.
    pub(in crate::app) fn mailed_route(&self, rec: &Record, ws: &str) -> Option<&Route> {
        use crate::contract::handoff::Classification;
        let class = rec
            .handoff()
            .classification
            .unwrap_or(Classification::Internal);
        let smtp = self.config().smtp.as_ref()?;
        if !smtp.classifications.contains(&class) {
            return None;
        }
        let route = self.cx().route_of(rec, ws)?;
        route
            .notify
            .iter()
            .any(|n| n == crate::outbox::EMAIL)
            .then_some(route)
    }

    /// Whether `u` is owed mail about pending `rec` on `route`: they have an `email`, their
    /// approval could move it on now, they are its assignee if the route assigned it (it is
    /// theirs alone until it moves on), and no agent of theirs is proven to have sent it
    /// (`Cx::is_sender`: what `from_agent` says skips nobody).
    pub(in crate::app) fn mailed_to(
        &self,
        rec: &Record,
        route: &Route,
        ws: &str,
        u: &User,
    ) -> bool {
        u.email.is_some() && self.owed_review(rec, route, ws, u)
    }

    /// Whether pending `rec` on `route` waits for `u`, however they are told: `mailed_to`
    /// but for the address (a Slack digest goes to their linked account).
    pub(in crate::app) fn owed_review(
        &self,
        rec: &Record,
        route: &Route,
        ws: &str,
        u: &User,
    ) -> bool {
        let progress = Progress::of(Some(route), rec);
        let assignee = rec
            .claimed()
            .filter(|c| c.assigned.is_some())
            .map(|c| &c.by);
        assignee.is_none_or(|a| *a == u.name)
            && crate::app::review::assign::moves_on(route, rec, &progress, u)
            && !self.cx().is_sender(rec, ws, &u.name)
    }

    /// A delivery went through: a link's confirmation message notes that its user was asked.
    fn notification_delivered(&self, d: &Delivery) {
        if d.event == crate::outbox::chat::LINK_ASKED && d.key.is_none() {
            self.link_asked(d);
        }
    }

    fn notification_failed(&self, d: &Delivery) {
        // A link's confirmation message belongs to no workspace: told as the links are.
        if d.event == crate::outbox::chat::LINK_ASKED && d.key.is_none() {
            self.link_ask_dead(d);
            return;
        }
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
