//! The outbox: notifications of events to webhooks and by email, durable and retried.
//! `spool` is called by `Cx::emit_all` after an event is in the audit log and before it is
//! broadcast; it writes one fsynced file per notification (`spool`) and wakes the channel's
//! worker (`worker`), one thread per webhook endpoint and one for email, so a slow or hung
//! receiver only delays its own queue. Webhook attempts are signed afresh (`sign`) and sent
//! (`webhook`); email notices become one mail per reviewer (`mail`, `letter`). Deliveries
//! that run out of attempts are dead: listed, and retried by an admin.

pub mod a2a_push;
pub mod address;
mod attempt;
mod audience;
pub mod chat;
mod damage;
mod dead;
pub mod digest;
mod endpoint;
mod index;
mod letter;
pub mod link_confirm;
mod mail;
pub mod mattermost;
mod post_places;
mod push;
mod review_post;
mod sign;
mod slack;
pub mod slack_digest;
mod spool;
mod webhook;
mod worker;

pub use audience::Audience;
pub use dead::{PageError, RetryError};
pub use letter::Facts;
pub use mail::{MailError, MailRequest, Recipient, Tokens};
pub use push::{PushRequest, ResolvePush, PUSH};
pub use sign::{BadSecret, Key};
pub use spool::{
    damaged as damaged_delivery, seal, unseal_doc, Adopted, Attempt, Delivery, Keep, Loaded, Owner,
    Sendable, Spool, SpoolError, State,
};

use crate::config::{Config, WebhookFormat};
use crate::events::{Event, EventType};
use crate::metrics::{OutcomeLabel, StateLabel};
use crate::startup::StartupProblem;
use endpoint::{Disabled, Endpoint};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

/// Called with a delivery that has just gone dead (to record `notification.failed`).
pub type OnDead = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Called with a delivery that has just been delivered (a link's confirmation message notes
/// that its Slack user was asked).
pub type OnDelivered = Arc<dyn Fn(&Delivery) + Send + Sync>;

/// Asked, for an email notice, what to say and to whom (`None`: no mail is owed).
pub type Resolve = Arc<dyn Fn(&Delivery) -> Option<MailRequest> + Send + Sync>;

/// What the workers need from the app.
#[derive(Clone)]
pub struct Hooks {
    pub on_dead: OnDead,
    pub on_delivered: OnDelivered,
    pub resolve: Resolve,
    /// For a push notice: what to push, and to whom.
    pub push: ResolvePush,
}

/// The email channel's name (webhooks' are `webhook:NAME`).
pub const EMAIL: &str = "email";

/// Events that owe the route's reviewers a mail.
const MAILED: [EventType; 3] = [
    EventType::HandoffReceived,
    EventType::HandoffRevised,
    EventType::HandoffEscalated,
];

/// Whether `event` owes a mail: those of `MAILED`, and a route's moves of an assignment
/// nobody was told of otherwise: a reassignment (the new assignee hears of it) and letting
/// go of one when nobody is left (everyone does). Letting go at an escalation is told by the
/// escalation's own mail.
fn owes_mail(event: &Event) -> bool {
    let by_route = event.data["by"] == "route";
    MAILED.contains(&event.kind)
        || (by_route
            && match event.kind {
                EventType::HandoffClaimed => event.data.get("reassigned_from").is_some(),
                EventType::HandoffUnclaimed => event.data.get("escalated_to").is_none(),
                _ => false,
            })
}

/// Events that may owe pushes (the app decides by the route's `push`).
const PUSHED: [EventType; 3] = [
    EventType::HandoffReceived,
    EventType::HandoffRevised,
    EventType::HandoffEscalated,
];

/// Most deliveries one listing returns (newest first).
pub const MAX_LISTED: usize = 1000;

pub struct Outbox {
    shared: Arc<Shared>,
    endpoints: Vec<Arc<Endpoint>>,
    /// A2A push-notification configs, by task (the `a2a` channel's targets).
    a2a: a2a_push::Configs,
    /// `[[chat]]` entries, with where their messages were posted.
    chats: Vec<(crate::config::Chat, chat::Posted)>,
    /// `[[mattermost]]` entries, with where their posts are, and the key of their buttons.
    mattermost: Vec<(crate::config::Mattermost, mattermost::Posted)>,
    mattermost_key: Option<Arc<mattermost::ButtonKey>>,
    /// Per `[[mattermost]]` entry: the Mattermost users a `direct` copy goes to, by route
    /// name, and for a handoff on no route.
    /// And where its direct copies are kept.
    mattermost_reviewers: Vec<mattermost::direct::Recipients>,
    /// Channels some route's or agent's `notify` names (see `audience`).
    targeted: std::collections::HashSet<String>,
    /// Whether events are owed mails: `[smtp]` is set and some route notifies `email`.
    mails: bool,
    /// Wake-ups of each channel's worker, by channel name.
    wake: HashMap<String, mpsc::Sender<String>>,
    /// The workers, until `start` hands them their threads.
    waiting: Mutex<Vec<(worker::Spec, mpsc::Receiver<String>)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// What the outbox and its workers share.
struct Shared {
    spool: Box<dyn Keep>,
    index: Mutex<index::Index>,
    disabled: Disabled,
    schedule: Vec<f64>,
    /// How long delivered deliveries are kept (`keep_delivered_s`), in ms.
    keep_ms: u64,
    public_url: String,
    gauges: Family<StateLabel, Gauge>,
    attempts: Family<OutcomeLabel, Counter>,
    /// `[push]`'s key and subscriptions, when it is set.
    push: Option<Arc<crate::push::Push>>,
    /// `baton_errors_total`: deliveries found damaged (`damage::KIND`).
    errors: Family<crate::metrics::KindLabel, Counter>,
}

impl Outbox {
    /// Loads the spool; returns warnings for the operator (unreadable files, deliveries
    /// whose endpoint is no longer configured). Nothing is sent before `start`. `documents`:
    /// where the chat MAC keys (Mattermost buttons, Slack link confirmations), the push key and
    /// subscriptions, and the chat posts' places are kept (a cluster's rows: shared).
    pub fn open(
        config: &Config,
        gauges: Family<StateLabel, Gauge>,
        attempts: Family<OutcomeLabel, Counter>,
        keep: Option<Box<dyn Keep>>,
        pushes: Family<OutcomeLabel, Counter>,
        errors: Family<crate::metrics::KindLabel, Counter>,
        documents: Arc<dyn crate::documents::Documents>,
    ) -> Result<(Outbox, Vec<StartupProblem>), OpenError> {
        let keys = Arc::new(crate::store::mac_keys::MacKeys::new(documents.clone()));
        let files = Spool::open(&config.data_dir)?;
        // A damaged key turns Web Push off, not the daemon: told once per cause (counted here,
        // logged by the key) and named on /healthz until it is mended.
        let push = config.push.as_ref().map(|p| {
            let errors = errors.clone();
            let label = crate::metrics::KindLabel {
                kind: "push_key_damaged".into(),
            };
            Arc::new(crate::push::Push::open(
                documents.clone(),
                &config.data_dir,
                p.subject.clone(),
                p.allow_private,
                Box::new(move || {
                    errors.get_or_create(&label).inc();
                }),
            ))
        });
        let disabled = Disabled::load(files.dir());
        let mailer = config.smtp.as_ref().map(mail::Mailer::new).transpose()?;
        let (spool, found): (Box<dyn Keep>, spool::Loaded) = match keep {
            Some(keep) => {
                // A cluster's damaged rows are named in the load's warnings (logged with the
                // start's problems): counted here, as a spool's damaged files are.
                let found = keep.load()?;
                damage::count(found.damaged.len(), &errors);
                (keep, found)
            }
            None => {
                let found = files.load_checked()?;
                damage::report(&found, &errors);
                (Box::new(files), found)
            }
        };
        let (loaded, unreadable) = (found.deliveries, found.warnings);
        let mut warnings: Vec<StartupProblem> = unreadable
            .into_iter()
            .map(StartupProblem::DeliveryUnreadable)
            .collect();
        let endpoints: Vec<Arc<Endpoint>> = config
            .webhooks
            .iter()
            .map(|w| Arc::new(Endpoint::new(w)))
            .collect();
        let keep_ms = config.deliveries.keep_delivered_s.saturating_mul(1000);
        let mut index = index::Index::default();
        let mut changed = Vec::new();
        for mut d in loaded {
            if expired(&d, crate::clock::now_ms(), keep_ms) {
                spool.remove(&d.id);
                continue;
            }
            let known = endpoints.iter().any(|e| e.channel == d.channel)
                || d.channel == a2a_push::CHANNEL
                || config.chat.iter().any(|c| c.outbox_channel() == d.channel)
                || config
                    .mattermost
                    .iter()
                    .any(|m| m.outbox_channel() == d.channel)
                || (d.channel == EMAIL && mailer.is_some())
                || (d.channel == PUSH && push.is_some());
            if d.state == State::Pending && !known {
                warnings.push(StartupProblem::DeliveryOrphaned {
                    id: d.id.clone(),
                    channel: d.channel.clone(),
                });
                worker::bury(&mut d, "endpoint no longer configured");
                changed.push(d.clone());
            }
            index.insert(d.id.clone(), d);
        }
        spool.save(&changed.iter().collect::<Vec<_>>())?;
        let mut wake = HashMap::new();
        let mut waiting = Vec::new();
        let mut specs: Vec<worker::Spec> = endpoints
            .iter()
            .map(|e| worker::Spec {
                name: e.name.clone(),
                channel: e.channel.clone(),
                transport: Box::new(webhook::Sender::new(&e.url, e.key.clone(), e.allow_private)),
            })
            .collect();
        // Where chat posts were made: documents, so shared by a cluster's nodes.
        let chats: Vec<(crate::config::Chat, chat::Posted)> = config
            .chat
            .iter()
            .map(|c| (c.clone(), chat::posted(documents.clone(), &c.name)))
            .collect();
        for (c, posted) in &chats {
            specs.push(worker::Spec {
                name: c.outbox_channel(),
                channel: c.outbox_channel(),
                transport: Box::new(chat::Sender::new(c, posted.clone(), keys.clone())),
            });
        }
        let mattermost: Vec<(crate::config::Mattermost, mattermost::Posted)> = config
            .mattermost
            .iter()
            .map(|m| (m.clone(), mattermost::posted(documents.clone(), &m.name)))
            .collect();
        // Opened at its first use: a damaged key stops only the posts that carry buttons.
        let mattermost_key = match mattermost.is_empty() {
            true => None,
            false => {
                let errors = errors.clone();
                let label = crate::metrics::KindLabel {
                    kind: "mattermost_key_damaged".into(),
                };
                Some(Arc::new(mattermost::ButtonKey::new(
                    keys.clone(),
                    Box::new(move || {
                        errors.get_or_create(&label).inc();
                    }),
                )))
            }
        };
        for (m, posted) in &mattermost {
            let direct = mattermost::direct::Direct::new(
                mattermost::direct::DirectPosts::new(documents.clone(), &m.name),
                mattermost_key.clone(),
            );
            specs.push(worker::Spec {
                name: m.outbox_channel(),
                channel: m.outbox_channel(),
                transport: Box::new(mattermost::Sender::new(m, posted.clone(), direct)),
            });
        }
        // With `direct`, who gets a copy: each route's reviewers linked in the entry's users.
        let mattermost_reviewers = mattermost
            .iter()
            .map(|(m, _)| {
                let of = |r: Option<&crate::routing::Route>| m.reviewers_of(r, &config.users);
                let by_route = config.routes.iter().map(|r| (r.name.clone(), of(Some(r))));
                let posts = mattermost::direct::DirectPosts::new(documents.clone(), &m.name);
                mattermost::direct::Recipients {
                    by_route: by_route.collect(),
                    no_route: of(None),
                    posts,
                }
            })
            .collect();
        if let Some(p) = &push {
            specs.push(worker::Spec {
                name: PUSH.into(),
                channel: PUSH.into(),
                transport: Box::new(push::Sender::new(p.clone(), pushes)),
            });
        }
        specs.push(worker::Spec {
            name: a2a_push::CHANNEL.into(),
            channel: a2a_push::CHANNEL.into(),
            transport: Box::new(a2a_push::Sender::new(
                &config.data_dir,
                config.deliveries.a2a_allow_private,
            )),
        });
        let mails = mailer.is_some()
            && config
                .routes
                .iter()
                .any(|r| r.notify.iter().any(|n| n == EMAIL));
        if let Some(m) = mailer {
            specs.push(worker::Spec {
                name: EMAIL.into(),
                channel: EMAIL.into(),
                transport: Box::new(m),
            });
        }
        for spec in specs {
            let (tx, rx) = mpsc::channel();
            wake.insert(spec.channel.clone(), tx);
            waiting.push((spec, rx));
        }
        let shared = Arc::new(Shared {
            spool,
            index: Mutex::new(index),
            disabled,
            schedule: config.deliveries.retry_schedule_s.clone(),
            keep_ms,
            public_url: config.public_url.clone(),
            gauges,
            attempts,
            push,
            errors,
        });
        shared.count(&shared.lock());
        let targeted = audience::targeted(config);
        let outbox = Outbox {
            shared,
            endpoints,
            a2a: a2a_push::Configs::new(&config.data_dir),
            chats,
            mattermost,
            mattermost_key,
            mattermost_reviewers,
            targeted,
            mails,
            wake,
            waiting: Mutex::new(waiting),
        };
        Ok((outbox, warnings))
    }

    /// Mattermost posts with buttons when a review is owed, and their updates at the decision.
    fn mattermost_deliveries(
        &self,
        event: &Event,
        origin: &str,
        aud: Option<&Audience>,
        link: &str,
    ) -> Vec<Delivery> {
        let (Some(key), Some(buttons)) = (event.key.as_deref(), &self.mattermost_key) else {
            return Vec::new();
        };
        // Only a channel post's buttons are sealed as it is made (a direct copy's when sent).
        // A key that cannot be read leaves them unsealed: the post is spooled anyway and its
        // attempts fail naming the key (`Sender`), retried, posted once it is mended.
        let owed = review_post::Review::of(event, aud).is_some();
        let sealed_now = owed && self.mattermost.iter().any(|(m, _)| !m.direct);
        let action_key = sealed_now.then(|| buttons.get().ok()).flatten();
        let mut made = Vec::new();
        for ((m, posted), to) in self.mattermost.iter().zip(&self.mattermost_reviewers) {
            let ch = m.outbox_channel();
            let url = mattermost::action_url(m, &self.shared.public_url);
            let reviewers = |route: Option<&str>| match route {
                Some(r) => to.by_route.get(r).cloned().unwrap_or_default(),
                None => to.no_route.clone(),
            };
            // Where the post was made is read only for an update (a decision): in a cluster
            // each read is a query.
            let post = owed
                .then(|| {
                    let k = action_key.as_ref();
                    mattermost::post(m, k, event, aud, link, &url, &reviewers)
                })
                .flatten();
            let body = post.or_else(|| {
                let update = mattermost::update(m, event, aud, link)?;
                let posted_before = match m.direct {
                    true => to.posts.has(key),
                    false => posted.has(key),
                };
                (posted_before || self.posting(&ch, key)).then_some(update)
            });
            if let Some(body) = body {
                made.push(self.make(event, origin, &ch, body));
            }
        }
        made
    }

    /// Starts one worker thread per channel (once; later calls do nothing).
    pub fn start(&self, hooks: Hooks) {
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|e| e.into_inner()));
        for (spec, rx) in waiting {
            worker::spawn(self.shared.clone(), spec, rx, hooks.clone());
        }
    }

    /// Writes a notification for every endpoint whose `events` globs match each event, synced
    /// to disk, then wakes the workers. `origins` names each event for good (its audit line's
    /// hash): a notification's id is derived from it and the channel, so an event spooled again
    /// after a crash makes no second notification, and a receiver sees one `webhook-id`.
    /// Returns whether the notifications are on disk. One that cannot be written is logged and
    /// still attempted while the daemon runs (the event is logged already, so the change
    /// cannot be undone for it).
    pub fn spool(
        &self,
        events: &[Event],
        origins: &[String],
        audience: &dyn Fn(&Event) -> Option<Audience>,
    ) -> bool {
        self.spool_new(events, origins, audience, false)
    }

    /// `spool` of events owed since a crash or a takeover: a notification any node already
    /// made (in a cluster: the node that served the workspace before may have made it and
    /// sent it, under the same id) is not made again, so a takeover sends each event once
    /// per endpoint and each mail once per person. Unknown (the database cannot say): made.
    pub fn spool_owed(
        &self,
        events: &[Event],
        origins: &[String],
        audience: &dyn Fn(&Event) -> Option<Audience>,
    ) -> bool {
        self.spool_new(events, origins, audience, true)
    }

    /// Whether a notification of the event whose audit line's hash is `origin` is held here,
    /// on any channel: proof that the event was handed on (see `AuditLog::owed_then`).
    pub fn handed_on(&self, origin: &str) -> bool {
        let index = self.shared.lock();
        self.wake
            .keys()
            .any(|channel| index.contains_key(&delivery_id(origin, channel)))
    }

    fn spool_new(
        &self,
        events: &[Event],
        origins: &[String],
        audience: &dyn Fn(&Event) -> Option<Audience>,
        owed: bool,
    ) -> bool {
        let mut made = Vec::new();
        for (event, origin) in events.iter().zip(origins) {
            let aud = audience(event);
            let thin = aud
                .as_ref()
                .filter(|a| a.thin())
                .map(|a| audience::thin(event, a));
            let told = thin.as_ref().unwrap_or(event);
            // A failure is not sent back to the endpoint that failed: it could never arrive,
            // and would fail again, for ever.
            let failed_channel = (event.kind == EventType::NotificationFailed)
                .then(|| event.data["channel"].as_str())
                .flatten();
            for e in self.endpoints.iter().filter(|e| {
                let targeted = self.targeted.contains(&e.channel);
                e.wants(event.kind.as_str()) && audience::allows(e, targeted, event, aud.as_ref())
            }) {
                if failed_channel != Some(e.channel.as_str()) {
                    let url = &self.shared.public_url;
                    let body = match e.format {
                        WebhookFormat::Standard => webhook::body(told, url),
                        WebhookFormat::Slack => slack::body(
                            told,
                            event.key.as_deref().map(|k| handoff_url(url, k)).as_deref(),
                            aud.as_ref().and_then(|a| a.title.as_deref()),
                        ),
                    };
                    made.push(self.make(event, origin, &e.channel, body));
                }
            }
            // Chat apps: a post with buttons when a review is owed, its update at the decision.
            if let Some(key) = event.key.as_deref() {
                let link = handoff_url(&self.shared.public_url, key);
                for (c, posted) in &self.chats {
                    let ch = c.outbox_channel();
                    let body = chat::post(c, event, aud.as_ref(), &link).or_else(|| {
                        let update = chat::update(event, aud.as_ref(), &link)?;
                        (posted.has(key) || self.posting(&ch, key)).then_some(update)
                    });
                    if let Some(body) = body {
                        made.push(self.make(event, origin, &ch, body));
                    }
                }
                made.extend(self.mattermost_deliveries(event, origin, aud.as_ref(), &link));
            }
            // A2A push notifications: the configs the task's agent set.
            made.extend(self.a2a_deliveries(event, origin));
            // A notice: the email worker finds the route's reviewers and writes the mails.
            if self.mails && owes_mail(event) && event.key.is_some() {
                made.push(self.make(event, origin, EMAIL, String::new()));
            }
            // A push notice: the push worker finds who is owed one, and their browsers.
            if self.shared.push.is_some() && PUSHED.contains(&event.kind) && event.key.is_some() {
                made.push(self.make(event, origin, PUSH, String::new()));
            }
        }
        if owed {
            let ids: Vec<String> = made.iter().map(|d| d.id.clone()).collect();
            match self.shared.spool.known(&ids) {
                Ok(known) if !known.is_empty() => {
                    tracing::info!(
                        count = known.len(),
                        "owed notifications already made by the node that served the workspace before; not made again"
                    );
                    made.retain(|d| !known.contains(&d.id));
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell which owed notifications were made already; making them all (receivers see repeated ids)")
                }
            }
        }
        self.keep(made)
    }

    /// Keeps the deliveries not kept already (by id), synced to disk, then wakes their
    /// channels' workers. Returns whether they are on disk.
    fn keep(&self, mut made: Vec<Delivery>) -> bool {
        let mut index = self.shared.lock();
        made.retain(|d| !index.contains_key(&d.id));
        if made.is_empty() {
            return true;
        }
        let saved = self.shared.spool.save(&made.iter().collect::<Vec<_>>());
        if let Err(e) = &saved {
            tracing::error!(error = %e, "cannot spool notifications; they are sent but would not survive a restart");
        }
        for d in &made {
            index.insert(d.id.clone(), d.clone());
        }
        self.shared.count(&index);
        drop(index);
        for d in made {
            if let Some(tx) = self.wake.get(&d.channel) {
                let _ = tx.send(d.id);
            }
        }
        saved.is_ok()
    }

    /// `[push]`'s key and subscriptions, when it is set.
    /// Why the key of Mattermost buttons could not be read at its last use, if so.
    pub fn mattermost_key_damage(&self) -> Option<String> {
        self.mattermost_key.as_ref()?.damage()
    }

    pub fn push(&self) -> Option<&Arc<crate::push::Push>> {
        self.shared.push.as_ref()
    }

    /// Takes over the pending deliveries of nodes that are gone (in a cluster), and wakes
    /// their channels' workers. Returns how many. Also loads the pending deliveries this
    /// node's rows hold but its memory does not: an adoption committed whose answer was lost
    /// (the connection dropped after the COMMIT) left them this node's, and nothing else would
    /// send them before a restart. Their ids come with the adoption's own statement, so the
    /// check costs no transaction; the rows are read only when some are missing.
    pub fn adopt(&self) -> usize {
        let Adopted {
            deliveries: mut adopted,
            own_pending,
        } = self.shared.spool.adopt();
        let missing: Vec<String> = {
            let taken: std::collections::HashSet<&str> =
                adopted.iter().map(|d| d.id.as_str()).collect();
            let index = self.shared.lock();
            own_pending
                .into_iter()
                .filter(|id| !index.contains_key(id) && !taken.contains(id.as_str()))
                .collect()
        };
        let mut found = match missing.is_empty() {
            true => Vec::new(),
            false => self.shared.spool.fetch(&missing),
        };
        // Rows read as pending: each one damaged was found so by this read (a damaged row is
        // kept dead), and its error line is logged already (`cluster::deliveries`).
        let damaged = adopted.iter().chain(&found);
        damage::count(
            damaged.filter(|d| d.damaged.is_some()).count(),
            &self.shared.errors,
        );
        let mut index = self.shared.lock();
        // A delivery read back that is in memory by now was made here meanwhile: memory is
        // the newer. (An adopted one replaces what memory held: its row is the newer.)
        found.retain(|d| !index.contains_key(&d.id));
        if !found.is_empty() {
            tracing::warn!(
                count = found.len(),
                "pending deliveries this node holds in the cluster's database were not in its memory (an adoption whose answer was lost): loaded, and sent now"
            );
        }
        adopted.extend(found);
        let count = adopted.len();
        let mut wake = Vec::new();
        for d in adopted {
            wake.push((d.channel.clone(), d.id.clone()));
            index.insert(d.id.clone(), d);
        }
        self.shared.count(&index);
        drop(index);
        for (channel, id) in wake {
            if let Some(tx) = self.wake.get(&channel) {
                let _ = tx.send(id);
            }
        }
        count
    }

    /// Whether a post of handoff `key` to chat channel `channel` waits to be sent.
    fn posting(&self, channel: &str, key: &str) -> bool {
        self.shared.lock().values().any(|d| {
            d.channel == channel && d.key.as_deref() == Some(key) && d.state == State::Pending
        })
    }

    fn make(&self, event: &Event, origin: &str, channel: &str, body: String) -> Delivery {
        let now = crate::clock::now_ms();
        Delivery {
            id: delivery_id(origin, channel),
            channel: channel.to_string(),
            to: None,
            event: event.kind.as_str().to_string(),
            workspace: event.workspace.clone(),
            key: event.key.clone(),
            created_at: crate::clock::now_rfc3339(),
            state: State::Pending,
            attempts: Vec::new(),
            next_at_ms: Some(now + attempt::delay_ms(self.shared.schedule[0])),
            round_start: 0,
            body,
            damaged: None,
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, index::Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the delivered deliveries of `channel` older than `keep_delivered_s` (each
    /// worker does it for its own channel now and then, so a long run stays bounded).
    fn prune(&self, channel: &str) {
        let now = crate::clock::now_ms();
        let mut index = self.lock();
        let old: Vec<String> = index
            .values()
            .filter(|d| d.channel == channel && expired(d, now, self.keep_ms))
            .map(|d| d.id.clone())
            .collect();
        for id in &old {
            index.remove(id);
            self.spool.remove(id);
        }
        if !old.is_empty() {
            self.count(&index);
            tracing::debug!(
                channel,
                forgotten = old.len(),
                "delivered notifications forgotten"
            );
        }
    }

    /// Sets the gauges of deliveries by state.
    fn count(&self, index: &index::Index) {
        for s in [State::Pending, State::Delivered, State::Dead] {
            let n = index.values().filter(|d| d.state == s).count();
            let label = StateLabel {
                state: s.as_str().into(),
            };
            self.gauges.get_or_create(&label).set(n as i64);
        }
    }
}

/// What a key must have escaped to be one path segment (RFC 3986 unreserved stay as is).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Whether a delivery is delivered and older than `keep_ms` (dead ones stay until retried).
fn expired(d: &Delivery, now_ms: u64, keep_ms: u64) -> bool {
    d.state == State::Delivered && now_ms.saturating_sub(worker::created_ms(d)) > keep_ms
}

/// The handoff's page under `public_url`.
fn handoff_url(public_url: &str, key: &str) -> String {
    let enc = percent_encoding::utf8_percent_encode(key, PATH_SEGMENT);
    format!("{public_url}/handoffs/{enc}")
}

/// `msg_` and 128 bits of the sha256 of the event's origin (its audit line's hash) and the
/// channel: unique without coordination, stable across retries and across a crash that makes
/// the event be spooled again.
fn delivery_id(origin: &str, channel: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{origin}\n{channel}").as_bytes());
    format!("msg_{}", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::{Outbox, State};
    use crate::config::Config;
    use crate::events::{Event, EventType};
    use serde_json::json;

    #[test]
    fn delivered_deliveries_past_keep_delivered_s_are_forgotten_and_dead_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let text =
            "workspaces = [\"ws\"]\ndata_dir = \"data\"\n[deliveries]\nkeep_delivered_s = 0\n";
        let config = Config::parse(text, "test", dir.path()).unwrap();
        let m = crate::metrics::Metrics::default();
        let open = || {
            Outbox::open(
                &config,
                m.deliveries.clone(),
                m.delivery_attempts.clone(),
                None,
                Default::default(),
                Default::default(),
                std::sync::Arc::new(crate::documents::InDataDir::new(&config.data_dir)),
            )
        };
        let (outbox, _) = open().unwrap();
        let e = Event::new(EventType::HandoffReceived, "alpha", Some("k"), json!({}));
        let mut old = outbox.make(&e, "line-1", "webhook:ops", "{}".into());
        old.created_at = "2020-01-01T00:00:00.000Z".into();
        let (mut delivered, mut dead) = (old.clone(), old);
        delivered.state = State::Delivered;
        (dead.id, dead.state) = ("msg_dead".into(), State::Dead);
        outbox.shared.spool.save(&[&delivered, &dead]).unwrap();
        for d in [&delivered, &dead] {
            outbox.shared.lock().insert(d.id.clone(), d.clone());
        }
        outbox.shared.prune("webhook:ops");
        let left: Vec<String> = outbox
            .list(None, None, 10)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(left, ["msg_dead"]);
        let (reopened, _) = open().unwrap();
        assert_eq!(
            reopened.list(None, None, 10).unwrap().len(),
            1,
            "gone from disk too"
        );
    }
}
