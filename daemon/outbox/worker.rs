//! One thread per channel (each webhook endpoint, and email): it keeps that channel's pending
//! deliveries ordered by their next attempt, sends the due ones one at a time, and records
//! each attempt in the spool. Threads, not async tasks: an attempt is a blocking exchange of
//! up to 15 s, and a thread per channel is what keeps one receiver's slowness (or a hung mail
//! server) from delaying the others.

use super::attempt::{delay_ms, Outcome, Transport};
use super::spool::{Attempt, Delivery, Sendable, State};
use super::{Hooks, Shared};
use crate::clock::now_ms;
use crate::metrics::OutcomeLabel;
use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a worker with nothing due sleeps before looking again anyway.
const IDLE: Duration = Duration::from_secs(600);
/// How soon a delivery this node may not send yet (see `Keep::may_send`) is looked at again.
const LATER_MS: u64 = 500;
/// How often a worker forgets its channel's delivered deliveries past `keep_delivered_s`.
const PRUNE_EVERY_MS: u64 = 600_000;

/// When a delivery was made, in Unix milliseconds (0 if its time does not parse).
pub fn created_ms(d: &Delivery) -> u64 {
    time::OffsetDateTime::parse(
        &d.created_at,
        &time::format_description::well_known::Rfc3339,
    )
    .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64)
}

/// Marks a delivery dead with a reason that is not an answer from its receiver.
pub fn bury(d: &mut Delivery, why: &str) {
    d.attempts.push(Attempt {
        at: crate::clock::now_rfc3339(),
        status: None,
        error: Some(why.to_string()),
        duration_ms: 0,
    });
    d.state = State::Dead;
    d.next_at_ms = None;
}

/// A channel's worker: `name` is the webhook's name (what a `410` disables) or `email`.
pub struct Spec {
    pub name: String,
    pub channel: String,
    pub transport: Box<dyn Transport>,
}

pub fn spawn(shared: Arc<Shared>, spec: Spec, rx: Receiver<String>, hooks: Hooks) {
    let thread = format!("outbox-{}", spec.name);
    let worker = Worker {
        shared,
        spec,
        hooks,
        queue: BTreeSet::new(),
        pruned_at: now_ms(),
    };
    std::thread::Builder::new()
        .name(thread)
        .spawn(move || worker.run(rx))
        .expect("a thread can be started");
}

struct Worker {
    shared: Arc<Shared>,
    spec: Spec,
    hooks: Hooks,
    /// (next attempt in Unix ms, delivery id). An id may be in twice (woken again after a
    /// manual retry); the entry that no longer matches the delivery is skipped.
    queue: BTreeSet<(u64, String)>,
    /// When this worker last pruned its channel (Unix ms).
    pruned_at: u64,
}

impl Worker {
    fn run(mut self, rx: Receiver<String>) {
        for d in self.shared.lock().values() {
            if d.state == State::Pending && d.channel == self.spec.channel {
                self.queue.insert((d.next_at_ms.unwrap_or(0), d.id.clone()));
            }
        }
        loop {
            if now_ms().saturating_sub(self.pruned_at) >= PRUNE_EVERY_MS {
                self.shared.prune(&self.spec.channel);
                self.pruned_at = now_ms();
            }
            let wait = match self.queue.first() {
                Some((at, _)) => Duration::from_millis(at.saturating_sub(now_ms())),
                None => IDLE,
            };
            if !wait.is_zero() {
                match rx.recv_timeout(wait) {
                    Ok(id) => self.enqueue(id),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                continue;
            }
            if let Some((at, id)) = self.queue.pop_first() {
                self.attempt(at, &id);
            }
        }
    }

    fn enqueue(&mut self, id: String) {
        let at = self.shared.lock().get(&id).and_then(|d| d.next_at_ms);
        if let Some(at) = at {
            self.queue.insert((at, id));
        }
    }

    fn attempt(&mut self, at: u64, id: &str) {
        let d = {
            let index = self.shared.lock();
            match index.get(id) {
                Some(d) if d.state == State::Pending && d.next_at_ms == Some(at) => d.clone(),
                _ => return,
            }
        };
        match self.shared.spool.may_send(&d) {
            Sendable::Now => {}
            Sendable::Later => {
                let next = now_ms() + LATER_MS;
                if let Some(d) = self.shared.lock().get_mut(id) {
                    d.next_at_ms = Some(next);
                }
                self.queue.insert((next, id.to_string()));
                return;
            }
            Sendable::Gone => {
                let mut index = self.shared.lock();
                index.remove(id);
                self.shared.count(&index);
                return;
            }
        }
        if d.channel == super::EMAIL && d.to.is_none() {
            for (next, child) in super::mail::expand(&self.shared, &self.hooks, &d) {
                self.queue.insert((next, child));
            }
            return;
        }
        if d.channel == super::PUSH && d.to.is_none() {
            for (next, child) in super::push::expand(&self.shared, &self.hooks, &d) {
                self.queue.insert((next, child));
            }
            return;
        }
        let started = Instant::now();
        let at_text = crate::clock::now_rfc3339();
        let outcome = match self.shared.disabled.why(&self.spec.name) {
            Some(why) => Outcome::failed(format!("endpoint disabled: {why}")),
            None => self.spec.transport.send(&d),
        };
        let label = OutcomeLabel {
            outcome: if outcome.delivered() {
                "delivered"
            } else {
                "failed"
            }
            .into(),
        };
        self.shared.attempts.get_or_create(&label).inc();
        if outcome.gone {
            let why = format!("it answered 410 Gone at {at_text}");
            tracing::warn!(endpoint = %self.spec.name, "webhook endpoint disabled: {why}");
            self.shared.disabled.disable(&self.spec.name, why);
        }
        let mut index = self.shared.lock();
        let Some(d) = index.get_mut(id) else { return };
        d.attempts.push(Attempt {
            at: at_text,
            status: outcome.status,
            error: outcome.error.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
        });
        let tried = d.attempts.len() - d.round_start;
        let disabled = outcome.gone || self.shared.disabled.why(&self.spec.name).is_some();
        if outcome.delivered() {
            d.state = State::Delivered;
            d.next_at_ms = None;
        } else if disabled || outcome.permanent || tried >= self.shared.schedule.len() {
            d.state = State::Dead;
            d.next_at_ms = None;
        } else {
            let wait = match outcome.retry_after {
                Some(r) => r.as_millis() as u64,
                None => delay_ms(self.shared.schedule[tried]),
            };
            let next = now_ms() + wait;
            d.next_at_ms = Some(next);
            self.queue.insert((next, id.to_string()));
        }
        let d = d.clone();
        if let Err(e) = self.shared.spool.save(&[&d]) {
            tracing::error!(error = %e, delivery = id, "cannot record a delivery attempt");
        }
        self.shared.count(&index);
        drop(index);
        let (status, error) = (outcome.status, outcome.error.as_deref().unwrap_or(""));
        match d.state {
            State::Delivered => {
                tracing::info!(delivery = id, channel = %d.channel, event = %d.event, status, attempts = tried, "notification delivered");
                (self.hooks.on_delivered)(&d);
            }
            State::Pending => {
                tracing::warn!(delivery = id, channel = %d.channel, status, error, attempts = tried, "notification attempt failed; will retry")
            }
            State::Dead => {
                tracing::error!(delivery = id, channel = %d.channel, status, error, attempts = tried, "notification dead: no attempt left");
                (self.hooks.on_dead)(&d);
            }
        }
    }
}
