//! Digests: on routes with `digest = true`, a reviewer gets one mail at their cadence
//! (`digest_every_min`, default hourly) listing every handoff that waits for them there,
//! instead of a mail per handoff and revision, and one Slack direct message per Slack
//! account surely theirs on the routes a Slack entry posts (`digest_slack`). Urgent triggers (critical_action, error),
//! escalations and reassignments are still mailed at once (`waits_for_digest`).
//!
//! Boundaries are whole multiples of the cadence since the Unix epoch (UTC): hourly at the
//! hour, 1440 at midnight UTC. At each boundary, a reviewer is owed a digest when something
//! that waits for them began to wait since the last digest made for them (with none on
//! record, anything waiting: a backlog on a route just set to digests is not left unmailed):
//! it lists all that waits then, not only the new. Due
//! times are computed from the records and `data_dir/digests.json` (the boundary of each
//! reviewer's last digest), so a digest due while the daemon was down goes out when it is
//! back; the mail's outbox id is fixed by reviewer and boundary, so a boundary makes one mail
//! even if the file was not written before a crash. In a cluster each node digests the
//! workspaces it holds the leases of (ids apart by node name).

use crate::app::{App, Served};
use crate::clock::now_ms;
use crate::contract::handoff::Trigger;
use crate::contract::Handoff;
use crate::events::{Event, EventType};
use crate::outbox::digest::{self, Item, Spooled};
use crate::routing::User;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The file of each reviewer's last digest boundary (Unix ms), in `data_dir`.
const FILE: &str = "digests.json";

/// Whether a mail owed for `event` about `h` waits for the digest on a digest route: new work
/// and revisions do; urgent triggers and escalations (and a route's reassignments, told to
/// the one person concerned) go out at once.
pub(in crate::app) fn waits_for_digest(event: &str, h: &Handoff) -> bool {
    matches!(event, "handoff.received" | "handoff.revised") && !urgent(h)
}

/// A trigger that must not wait: the same as Web Push's `urgent`.
pub(super) fn urgent(h: &Handoff) -> bool {
    matches!(h.trigger, Some(Trigger::CriticalAction | Trigger::Error))
}

/// What the housekeeping keeps of digests between rounds.
#[derive(Default)]
pub(in crate::app) struct Digests {
    /// The latest boundary looked at, per reviewer (memory only): a round whose reviewers'
    /// boundaries have not turned reads no record.
    checked: Mutex<HashMap<String, u64>>,
    /// `digests.json` as last read or written, once read.
    made: Mutex<Option<BTreeMap<String, u64>>>,
    /// Reviewers' own cadences (`digest_cadence`).
    pub(in crate::app) chosen: super::digest_cadence::Chosen,
}

/// A reviewer whose boundary has turned.
pub(super) struct Due<'a> {
    pub(super) user: &'a User,
    boundary: u64,
    /// Items that began to wait from here on make a digest due.
    from: u64,
    items: Vec<(Item, Arc<Served>)>,
    /// Their Slack accounts (`digest_slack`): each gets a direct message of the lines of
    /// the routes its entry posts.
    pub(super) accounts: Vec<Account>,
    pub(super) lines: Vec<Listed>,
}

/// A reviewer's Slack account in one entry.
#[derive(Debug, Clone)]
pub(in crate::app) struct Account {
    /// The `[[chat]]` entry's name.
    pub chat: String,
    /// The Slack user id, where the direct message goes.
    pub chat_user: String,
}

/// A line for a digest through entry `chat`.
pub(in crate::app) struct Listed {
    pub(super) chat: String,
    pub(super) line: crate::outbox::slack_digest::Line,
    pub(super) ws: std::sync::Arc<crate::app::Served>,
}

impl App {
    /// Makes the digests due now (called by the housekeeping every second). Cheap when no
    /// reviewer's boundary has turned.
    pub(in crate::app) fn send_digests(&self) {
        let config = self.config();
        let mailing = config.smtp.is_some()
            && config
                .routes
                .iter()
                .any(|r| r.digest && r.notify.iter().any(|n| n == crate::outbox::EMAIL));
        let chatting = self.slack_digesting();
        // Before the start-up scan is done, what waits is not all known yet.
        let ready = self
            .inner
            .runtime
            .ready
            .load(std::sync::atomic::Ordering::Acquire);
        if !(mailing || chatting) || !ready {
            return;
        }
        let now = now_ms();
        let state = &self.inner.runtime.digests;
        let chosen = self.chosen_cadences();
        let mut due: Vec<Due> = {
            let checked = lock(&state.checked);
            config
                .users
                .iter()
                .filter(|u| chatting || u.email.is_some())
                .filter_map(|u| {
                    // The reviewer's choice on /reviewers, else the configuration's.
                    let every = u64::from(super::digest_cadence::every_min(&chosen, u)) * 60_000;
                    let boundary = now / every * every;
                    (checked.get(&u.name).is_none_or(|c| *c < boundary)).then_some(Due {
                        user: u,
                        boundary,
                        from: 0,
                        items: Vec::new(),
                        accounts: Vec::new(),
                        lines: Vec::new(),
                    })
                })
                .collect()
        };
        if chatting {
            for d in &mut due {
                d.accounts = self.slack_accounts(d.user);
            }
            // Nobody to tell: neither mailed nor linked to Slack.
            due.retain(|d| (mailing && d.user.email.is_some()) || !d.accounts.is_empty());
        }
        if due.is_empty() {
            return;
        }
        {
            let mut made = lock(&state.made);
            let made = made.get_or_insert_with(|| self.read_made());
            due.retain(|d| match made.get(&d.user.name) {
                Some(last) if *last >= d.boundary => {
                    lock(&state.checked).insert(d.user.name.clone(), d.boundary);
                    false
                }
                _ => true,
            });
            for d in &mut due {
                if let Some(last) = made.get(&d.user.name) {
                    d.from = *last;
                }
            }
        }
        self.gather(&mut due);
        for d in due {
            let (name, boundary) = (d.user.name.clone(), d.boundary);
            if self.send_digest(d) {
                lock(&state.checked).insert(name, boundary);
            }
        }
    }

    /// Fills each reviewer's items: what waits for them on digest routes in the workspaces
    /// served here, in one pass over them.
    fn gather(&self, due: &mut [Due]) {
        for ws in self.inner.registry.all() {
            if ws.store.is_damaged() {
                continue;
            }
            let name = &ws.workspace.name;
            let st = ws.lock();
            let Some(rec) = st
                .pending
                .as_ref()
                .and_then(|k| st.records.get(k))
                .filter(|r| r.is_pending())
            else {
                continue;
            };
            let Some(route) = self.cx().route_of(rec, name).filter(|r| r.digest) else {
                continue;
            };
            let mailed = self.mailed_route(rec, name).is_some();
            let h = rec.handoff();
            // Both are `now_rfc3339` times, which compare as strings.
            let since = rec
                .meta
                .route
                .as_ref()
                .map_or(rec.meta.updated_at.as_str(), |r| {
                    r.since.as_str().max(rec.meta.updated_at.as_str())
                })
                .to_string();
            for d in due.iter_mut() {
                self.gather_slack(d, rec, route, &ws, &since);
                if mailed && self.mailed_to(rec, route, name, d.user) {
                    let links = self.action_tokens(
                        &d.user.name,
                        &rec.meta.key,
                        (rec.meta.revision, &rec.meta.digest),
                        route,
                    );
                    let item = Item {
                        facts: self.mail_facts(rec, name, route, "digest"),
                        since: since.clone(),
                        urgent: urgent(&h),
                        links,
                    };
                    d.items.push((item, ws.clone()));
                }
            }
        }
    }

    /// Spools `d.user`'s digests (mail, Slack) at their boundary if something they list
    /// began to wait since their last; logs `digest.sent` in each listed handoff's
    /// workspace. Whether the boundary is done with (false: try again next round; a digest
    /// made already is not made again, by its id).
    fn send_digest(&self, d: Due) -> bool {
        let fresh = |since: &str| {
            let at =
                time::OffsetDateTime::parse(since, &time::format_description::well_known::Rfc3339)
                    .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as u64);
            // A line that began to wait after the boundary makes the next digest due.
            at >= d.from && at < d.boundary
        };
        let mailed = d.items.iter().any(|(i, _)| fresh(&i.since));
        let chatted = self.slack_due(&d, &fresh);
        if !mailed && chatted.is_empty() {
            tracing::debug!(reviewer = %d.user.name, waiting = d.items.len() + d.lines.len(), "no digest due: nothing new waits");
            return true;
        }
        let mut done = true;
        if mailed {
            done &= self.send_mail_digest(d.user, d.boundary, d.items);
        }
        for account in chatted {
            done &= self.send_slack_digest(d.user, d.boundary, &account, &d.lines);
        }
        if done {
            self.note_made(&d.user.name, d.boundary);
        }
        done
    }

    /// Spools `user`'s mail digest of `items` at `boundary`. Whether it is spooled (now or
    /// before).
    fn send_mail_digest(
        &self,
        user: &User,
        boundary: u64,
        items: Vec<(Item, Arc<Served>)>,
    ) -> bool {
        let Some(to) = user.email.as_deref() else {
            return true;
        };
        let (oldest, _) = items
            .iter()
            .min_by(|a, b| a.0.since.cmp(&b.0.since))
            .expect("a fresh item");
        let oldest_ws = oldest.facts.workspace.clone();
        let listed: Vec<(String, Arc<Served>)> = items
            .iter()
            .map(|(i, ws)| (i.facts.key.clone(), ws.clone()))
            .collect();
        let letter = digest::compose(
            items.into_iter().map(|(i, _)| i).collect(),
            &self.config().public_url,
        );
        let id = digest::digest_id(&user.name, boundary, self.node_name());
        let spooled = self
            .inner
            .commit
            .outbox
            .spool_digest(&id, to, &oldest_ws, &letter);
        self.digest_spooled(user, &id, crate::outbox::EMAIL, spooled, listed)
    }

    /// This node's name in a cluster (`Some("")` unnamed), None alone: keeps apart the
    /// digests of nodes serving different workspaces.
    pub(super) fn node_name(&self) -> Option<&str> {
        self.config()
            .cluster
            .as_ref()
            .map(|c| c.node.as_deref().unwrap_or(""))
    }

    /// Tells what came of spooling `user`'s digest `id` on `channel` listing `listed`: the
    /// metrics and `digest.sent` once it is made. Whether it is spooled (now or before).
    pub(super) fn digest_spooled(
        &self,
        user: &User,
        id: &str,
        channel: &str,
        spooled: Result<Spooled, crate::outbox::SpoolError>,
        listed: Vec<(String, Arc<Served>)>,
    ) -> bool {
        let count = listed.len();
        match spooled {
            Ok(Spooled::Before) => {
                tracing::info!(reviewer = %user.name, delivery = %id, channel, "digest made before (a restart, or another node); not made again");
            }
            Ok(Spooled::Made) => {
                self.metrics().digests.inc();
                self.metrics().digest_items.observe(count as f64);
                tracing::info!(reviewer = %user.name, delivery = %id, channel, count, "digest spooled");
                for (key, ws) in listed {
                    let data = json!({ "reviewer": user.name, "count": count, "delivery": id,
                        "channel": channel });
                    let event =
                        Event::new(EventType::DigestSent, &ws.workspace.name, Some(&key), data);
                    if let Err(e) = self.cx().emit(&ws, event) {
                        tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot log digest.sent; the digest is spooled all the same");
                    }
                }
            }
            Err(e) => {
                tracing::error!(reviewer = %user.name, channel, error = %e, "cannot spool the digest; will try again");
                return false;
            }
        }
        true
    }

    fn made_file(&self) -> PathBuf {
        self.config().data_dir.join(FILE)
    }

    /// `digests.json`; empty if there is none. One unreadable is logged and read as empty:
    /// the outbox's ids still keep a boundary from making a second mail.
    fn read_made(&self) -> BTreeMap<String, u64> {
        let file = self.made_file();
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the digests' record; starting it afresh");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the digests' record; starting it afresh");
                BTreeMap::new()
            }
        }
    }

    /// Records `boundary` as `reviewer`'s last digest, durably.
    fn note_made(&self, reviewer: &str, boundary: u64) {
        let mut made = lock(&self.inner.runtime.digests.made);
        let made = made.get_or_insert_with(|| self.read_made());
        made.insert(reviewer.to_string(), boundary);
        let bytes = serde_json::to_vec(&*made).expect("a map of numbers serializes");
        let kind = crate::workspace::fsync::Kind::Other;
        if let Err(e) = crate::workspace::write_atomic(&self.made_file(), &bytes, kind) {
            tracing::warn!(error = %e, "cannot record the digest made; the outbox's id still keeps it from going out twice");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
