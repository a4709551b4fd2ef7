//! Web Push as an outbox channel. An event that may owe pushes (a handoff received, revised
//! or escalated) is spooled as one notice on channel `push`; the push worker asks the app
//! whom it owes (the reviewers who may decide the handoff, on a route with `push`) and makes
//! one delivery per browser subscription of theirs (`to`: the subscription's endpoint, by its
//! digest, and the reviewer it is owed to: `push::store::address`), each with its own
//! attempts. A browser whose subscription is another reviewer's by the time of an attempt
//! (signed in as someone else, subscribed again) is not sent the push. Each attempt encrypts the payload afresh for that browser (RFC 8291)
//! and signs a VAPID token for the push service's origin. A push service that answers 404 or
//! 410 says the subscription is gone: it is removed, and the delivery is dead at once (its
//! `notification.failed` event says so).

use super::attempt::{Outcome, Transport};
use super::spool::{Delivery, State};
use super::{Hooks, Shared};
use crate::clock::now_ms;
use crate::metrics::OutcomeLabel;
use crate::push::{Payload, Push};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::sync::Arc;
use std::time::Duration;

/// The push channel's name.
pub const PUSH: &str = "push";

/// The whole exchange with a push service.
const TIMEOUT: Duration = Duration::from_secs(15);

/// What the app answers about a handoff owed pushes: to whom, and what to say to each (each
/// reviewer's notification carries their own action tokens).
pub struct PushRequest {
    /// Reviewers (`[[users]]` names), each pushed on every browser they subscribed.
    pub to: Vec<(String, Payload)>,
}

/// Asked, for a push notice, what to push and to whom (`None`: nothing is owed).
pub type ResolvePush = Arc<dyn Fn(&Delivery) -> Option<PushRequest> + Send + Sync>;

/// Resolves a push notice into one delivery per subscribed browser of each reviewer owed
/// it (ids derived from the notice's and the subscription's, so a notice resolved twice
/// after a crash pushes nothing twice), and removes the notice. Returns the new deliveries'
/// (next attempt, id) for the queue.
pub fn expand(shared: &Shared, hooks: &Hooks, notice: &Delivery) -> Vec<(u64, String)> {
    // Called without the outbox's lock: the app waits for the workspace's.
    let request = (hooks.push)(notice);
    let mut made = Vec::new();
    if let (Some(req), Some(push)) = (request, shared.push.as_ref()) {
        for (reviewer, payload) in &req.to {
            let body = serde_json::to_string(payload).expect("a payload serializes");
            let subs = match push.subscriptions.of(reviewer) {
                Ok(subs) => subs,
                // Damaged or unreadable: nobody is pushed from a guess; the notice stays
                // and says why, and is tried again as any failed delivery.
                Err(e) => return unresolved(shared, hooks, notice, &e),
            };
            for sub in subs {
                made.push(Delivery {
                    id: format!("{}.{}", notice.id, &sub.id[4..]),
                    channel: PUSH.into(),
                    to: Some(crate::push::store::address(&sub)),
                    state: State::Pending,
                    attempts: Vec::new(),
                    next_at_ms: Some(now_ms()),
                    round_start: 0,
                    body: body.clone(),
                    ..notice.clone()
                });
            }
        }
    }
    let mut index = shared.lock();
    made.retain(|d| !index.contains_key(&d.id));
    if let Err(e) = shared.spool.save(&made.iter().collect::<Vec<_>>()) {
        tracing::error!(error = %e, "cannot spool pushes; they are sent but would not survive a restart");
    }
    for d in &made {
        index.insert(d.id.clone(), d.clone());
    }
    index.remove(&notice.id);
    shared.spool.remove(&notice.id);
    shared.count(&index);
    tracing::info!(notice = %notice.id, pushes = made.len(), key = notice.key.as_deref().unwrap_or(""), "push notice resolved");
    made.into_iter()
        .map(|d| (d.next_at_ms.unwrap_or(0), d.id))
        .collect()
}

/// Keeps a push notice whose reviewers' subscriptions cannot be read: the failure is its
/// attempt (shown on Deliveries), tried again on the retry schedule, dead (and told as
/// `notification.failed`) when the schedule runs out. Returns its next attempt for the queue.
fn unresolved(
    shared: &Shared,
    hooks: &Hooks,
    notice: &Delivery,
    e: &std::io::Error,
) -> Vec<(u64, String)> {
    let error = format!("cannot read the push subscriptions, so nothing was pushed: {e}");
    let mut index = shared.lock();
    let Some(d) = index.get_mut(&notice.id) else {
        return Vec::new();
    };
    d.attempts.push(super::spool::Attempt {
        at: crate::clock::now_rfc3339(),
        status: None,
        error: Some(error.clone()),
        duration_ms: 0,
    });
    let tried = d.attempts.len() - d.round_start;
    if tried >= shared.schedule.len() {
        d.state = State::Dead;
        d.next_at_ms = None;
    } else {
        d.next_at_ms = Some(now_ms() + super::attempt::delay_ms(shared.schedule[tried]));
    }
    let d = d.clone();
    if let Err(e) = shared.spool.save(&[&d]) {
        tracing::error!(error = %e, delivery = %d.id, "cannot record a delivery attempt");
    }
    shared.count(&index);
    drop(index);
    match d.next_at_ms {
        Some(next) => {
            tracing::error!(notice = %d.id, key = d.key.as_deref().unwrap_or(""), error, attempts = tried, "push notice not resolved; will retry");
            vec![(next, d.id)]
        }
        None => {
            tracing::error!(notice = %d.id, key = d.key.as_deref().unwrap_or(""), error, attempts = tried, "push notice dead: no attempt left");
            (hooks.on_dead)(&d);
            Vec::new()
        }
    }
}

/// Sends pushes to browsers' push services.
pub struct Sender {
    push: Arc<Push>,
    agent: ureq::Agent,
    /// `baton_push_total{outcome}`: sent, failed, removed.
    counts: Family<OutcomeLabel, Counter>,
}

impl Sender {
    pub fn new(push: Arc<Push>, counts: Family<OutcomeLabel, Counter>) -> Sender {
        let agent = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .redirects(0)
            .resolver(super::address::Guard {
                allow_private: push.allow_private,
            })
            .user_agent(concat!("baton/", env!("CARGO_PKG_VERSION")))
            .build();
        Sender {
            push,
            agent,
            counts,
        }
    }

    fn count(&self, outcome: &str) {
        let label = OutcomeLabel {
            outcome: outcome.into(),
        };
        self.counts.get_or_create(&label).inc();
    }

    /// The service's answer to a push of `d` to `sub`.
    fn post(&self, d: &Delivery, sub: &crate::push::Subscription) -> Outcome {
        let permanent = |error: String| Outcome {
            error: Some(error),
            permanent: true,
            ..Outcome::default()
        };
        let Ok(endpoint) = url::Url::parse(&sub.endpoint) else {
            return permanent("the subscription's endpoint is not a URL".into());
        };
        let sealed = match crate::push::message::seal(sub, d.body.as_bytes()) {
            Ok(s) => s,
            Err(e) => return permanent(e.to_string()),
        };
        let urgency = serde_json::from_str::<Payload>(&d.body)
            .map(|p| p.urgency)
            .unwrap_or_else(|_| "normal".into());
        let now_s = crate::clock::now_ms() / 1000;
        let authorization = match self
            .push
            .key
            .authorization(&endpoint, &self.push.subject, now_s)
        {
            Ok(a) => a,
            // A damaged key may be mended: tried again, named meanwhile.
            Err(e) => return Outcome::failed(format!("cannot sign the push: {e}")),
        };
        let answer = self
            .agent
            .post(endpoint.as_str())
            .set("content-type", "application/octet-stream")
            .set("content-encoding", "aes128gcm")
            .set("ttl", &crate::push::message::TTL_S.to_string())
            .set("urgency", &urgency)
            .set("authorization", &authorization)
            .send_bytes(&sealed);
        let status = match answer {
            Ok(resp) if (200..300).contains(&resp.status()) => {
                return Outcome {
                    status: Some(resp.status()),
                    ..Outcome::default()
                }
            }
            Ok(resp) => resp.status(),
            Err(ureq::Error::Status(code, _)) => code,
            // Not the URL: a push service's holds the browser's token.
            Err(ureq::Error::Transport(t)) => {
                let refused = std::error::Error::source(&t)
                    .and_then(|s| s.downcast_ref::<std::io::Error>())
                    .filter(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
                let error = match refused {
                    Some(e) => format!(
                        "private address: {e} (set [push] allow_private = true to allow them)"
                    ),
                    None => t.kind().to_string(),
                };
                return Outcome::failed(error);
            }
        };
        Outcome {
            status: Some(status),
            error: Some(format!("the push service answered HTTP {status}")),
            // Throttled or down: later. Any other refusal will not change by itself.
            permanent: !(status == 429 || status >= 500),
            ..Outcome::default()
        }
    }
}

/// Why a push spooled by an older baton (addressed by its subscription id alone, not bound
/// to the browser's endpoint and reviewer) is not sent.
fn older(id: &str) -> String {
    format!(
        "this push was spooled by an older baton, addressed to subscription {id} alone; this \
         release sends a push only to the browser's endpoint and reviewer it was made for, so \
         it is not sent (the next push to that reviewer is). In a cluster, a node of the other \
         release spools these until every node runs the same version"
    )
}

impl Transport for Sender {
    fn send(&self, d: &Delivery) -> Outcome {
        if let Some(old) = d.to.as_deref().filter(|to| !to.contains('/')) {
            self.count("failed");
            return Outcome {
                error: Some(older(old)),
                permanent: true,
                ..Outcome::default()
            };
        }
        let sub = match d
            .to
            .as_deref()
            .map(|to| self.push.subscriptions.addressed(to))
        {
            Some(Ok(sub)) => sub,
            Some(Err(e)) => {
                self.count("failed");
                return Outcome::failed(format!(
                    "cannot read the push subscriptions, so nothing was pushed: {e}"
                ));
            }
            None => None,
        };
        let Some(sub) = sub else {
            self.count("failed");
            return Outcome {
                error: Some(
                    "the browser's subscription was removed, or is now another reviewer's, before the push went out; not sent".into(),
                ),
                permanent: true,
                ..Outcome::default()
            };
        };
        let mut outcome = self.post(d, &sub);
        if let Some(status @ (404 | 410)) = outcome.status {
            // The browser unsubscribed or the service expired it: never push there again.
            let gone = crate::push::store::Which::Endpoint(&sub.endpoint);
            let removed = self.push.subscriptions.remove(None, gone);
            if let Err(e) = &removed {
                tracing::error!(error = %e, subscription = %sub.id, "cannot remove a push subscription its service says is gone; the next push will try it again");
            }
            tracing::warn!(delivery = %d.id, subscription = %sub.id, reviewer = %sub.reviewer, status, "push subscription gone; removed");
            self.count("removed");
            outcome.error = Some(format!(
                "the push service says the subscription is gone (HTTP {status}); it was removed, {}'s browser must subscribe again",
                sub.reviewer
            ));
            outcome.permanent = true;
            return outcome;
        }
        self.count(if outcome.delivered() {
            "sent"
        } else {
            "failed"
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_push_of_an_older_baton_is_told_as_such() {
        let why = super::older("a1b2c3d4e5f60718");
        assert!(
            why.contains("older baton") && why.contains("a1b2c3d4e5f60718"),
            "{why}"
        );
    }
}
