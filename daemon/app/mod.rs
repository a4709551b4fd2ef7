//! `App`: the daemon's core, a cheap-to-clone handle. Every state change goes through its
//! methods (ingest of agent files, decisions), and every change becomes an event: appended to
//! the workspace's audit log, broadcast to subscribers (SSE), counted in the metrics. The core
//! is synchronous file work and knows nothing of HTTP; async callers use `spawn_blocking`.
//!
//! The folder, from the bottom up: `model` (the record's types, importing no sibling) and
//! `state` (what the daemon holds of one workspace); `review`, the transitions; `views`, the
//! read models; `runtime`, loading, serving and the housekeeping. Transitions never call a
//! view's query, and views change nothing.

mod model;
mod review;
mod runtime;
mod state;
mod views;

pub use views::{export, replay};

pub use model::{Approval, Claim, DecideError, Decided, Escalation, Progress, Routed};
pub use review::approved::{ApprovedFile, MAX_PROMOTED_BYTES};
pub use review::assign::{Load, LoadError};
pub use review::away::{AwayError, Presence};
pub use review::bulk::{check_keys as check_bulk_keys, BulkError, KeyResult, MAX_BULK};
pub use review::claim::{ClaimError, ClaimView};
pub use review::decide::DecisionRequest;
pub use review::locks::{LockApiError, LockSeen};
pub use review::ownership::{OwnerError, Ownership};
pub use review::upload::{Target, UploadError, Uploaded};
pub use runtime::leases::Scope;
pub use state::{CheckpointRecord, Record, Review, Served};
pub use views::agreement::{AgreementDay, RouteAgreement};
pub use views::artifact_preview::{Against, Body, Preview, Source};
pub use views::artifact_raw::MAX_IMAGE_BYTES;
pub use views::artifact_raw::{Raw, MAX_RAW_BYTES};
pub use views::artifact_view::{approved_path, ArtifactView, Change, Check, ViewError};
pub use views::changes::{Changes, Comparison, FieldChange};
pub use views::history::{HistoryError, HistoryQuery, MAX_PAGE as MAX_EVENTS_PAGE};
pub use views::overview::{Files, HandoffLine, InvalidHandoff, Verdict, WorkspaceOverview};
pub use views::paging::MAX_PAGE;
pub use views::query::{CheckpointPage, Detail, StateFilter, Summary};
pub use views::queue::Standing;
pub use views::queue_order::{
    queue_page_of, QueueCounts, QueuePage, QueueQuery, QueueView, NEAR_S,
};
pub use views::search::SearchFailed;
pub use views::seen::SinceSeen;
pub use views::timeline::Timeline;

use crate::auth::{Actor, Tokens};
use crate::config::Config;
use crate::events::Event;
use crate::metrics::Metrics;
use crate::workspace::{self, Workspace};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    metrics: Metrics,
    tokens: Tokens,
    logins: crate::login::Logins,
    /// The key every decision is signed with (`crate::receipts`).
    keyring: crate::receipts::Keyring,
    events: broadcast::Sender<Event>,
    workspaces: RwLock<BTreeMap<String, Arc<Served>>>,
    by_root: RwLock<HashMap<PathBuf, Arc<Served>>>,
    roots: Vec<PathBuf>,
    /// Every accepted key -> its workspace: keys are unique across the daemon.
    keys: Mutex<HashMap<String, String>>,
    /// Set once the start-up scan has processed every workspace.
    ready: AtomicBool,
    /// Why the daemon can no longer do its job (e.g. the ingest thread died), if it cannot.
    failing: std::sync::OnceLock<String>,
    /// Artifact digests by file identity, so an unchanged file is hashed once.
    hashes: review::artifacts::HashCache,
    /// Snapshots of small text artifacts as received, for diffs between revisions.
    blobs: crate::blobs::Blobs,
    /// The ingest thread's channel, for what the core asks of it (see `asks`).
    intake: std::sync::OnceLock<runtime::intake_asks::Intake>,
    /// Tampering found and not yet acknowledged, by workspace (shown on /healthz).
    alerts: Mutex<BTreeMap<String, Vec<String>>>,
    /// Where the anchors of all workspaces are made durable together.
    ledger: crate::audit::Ledger,
    /// Where the records live: data_dir, or the cluster's database.
    records: crate::store::Records,
    /// This node's place in a cluster (`[cluster]`), if there is one.
    cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Shared copies of reviewers' handoff lists, for the queue page.
    listings: views::listing::Listings,
    /// When each workspace next needs the housekeeping.
    agenda: runtime::agenda::Agenda,
    /// The handoffs in list order, kept as they change.
    order: views::order::Order,
    /// The workspaces where a handoff.json was answered `invalid` (it may have been replaced
    /// since), so the queue's Invalid tab reads these, not every workspace.
    invalid_in: Mutex<std::collections::BTreeSet<String>>,
    /// Audit verdicts for the events page, recomputed only when a log changed.
    verdicts: views::overview::VerdictCache,
    /// Every proven line of the audit logs in time order, for the history of events.
    history: views::history::History,
    /// Notifications of events to webhooks (see `crate::outbox`).
    outbox: crate::outbox::Outbox,
    /// Who may hear of each handoff (route channels, data class), for the outbox.
    audiences: review::audience::Audiences,
    /// What each reviewer last saw of each handoff, for the queue's marks.
    seen: views::seen::Seen,
    /// Who said they are away, so routes assign them nothing.
    away: review::away::Away,
    /// Every open claim by holder, and the assigning routes' rounds.
    rota: review::rota::Rota,
    /// Full-text search; `None` when its index could not be opened (search answers 503).
    search: Option<crate::search::Search>,
    shutdown: CancellationToken,
    /// This daemon, as written into the `.baton/owner.lock` of each workspace it serves.
    me: crate::locks::Owner,
    /// The life locks held (one per place workspaces live): the workspaces recorded as this
    /// daemon's are its own while they are held.
    life: crate::locks::life::Life,
    /// The workspaces recorded as this daemon's -> the path of the life lock (relative to
    /// the workspace) their records name; `None`: served without a record (see `own`).
    owners: Mutex<HashMap<PathBuf, Option<String>>>,
    /// Workspaces another daemon serves, tried again every few seconds.
    waiting: Mutex<BTreeMap<PathBuf, Workspace>>,
    /// Workspaces that could not be opened (see `served`), tried again every few seconds.
    unserved: Mutex<BTreeMap<PathBuf, runtime::serving::Unserved>>,
}

/// What opening the app has to tell the operator.
pub struct Opened {
    pub app: App,
    /// A freshly made admin token, to print once.
    pub admin_token: Option<String>,
    /// A freshly made password of the `admin` sign-in, to print once.
    pub admin_password: Option<String>,
    pub warnings: Vec<crate::startup::StartupProblem>,
}

impl App {
    /// Finds the workspaces and rebuilds their state from the archives; no agent file is
    /// processed yet (the start-up scan does that).
    pub fn open(config: Config) -> anyhow::Result<Opened> {
        std::fs::create_dir_all(&config.data_dir)?;
        let found = workspace::discover(&config.workspaces)?;
        let cluster = match &config.cluster {
            Some(c) => Some(crate::cluster::Cluster::connect(c)?),
            None => None,
        };
        let secrets = cluster
            .as_deref()
            .map(|c| c as &dyn crate::auth::SharedSecrets);
        let (tokens, admin_token) = Tokens::load(&config, secrets)?;
        let ledger = crate::audit::Ledger::open(&config.data_dir)?;
        let records = match &cluster {
            Some(c) => {
                // Registered before any lease is taken, so the fair share counts this node.
                c.leases
                    .heartbeat(&config.public_url, &c.peer_url(&config))?;
                c.records()
            }
            None => crate::store::in_data_dir(&config.data_dir),
        };
        let shared_sessions = cluster.as_ref().map(|c| c.sessions());
        let (logins, admin_password) =
            crate::login::Logins::load(&config, shared_sessions, secrets)?;
        let keyring = crate::receipts::Keyring::open(&config.data_dir)?;
        let (events, _) = broadcast::channel(4096);
        let metrics = Metrics::default();
        let (outbox, outbox_warnings) = crate::outbox::Outbox::open(
            &config,
            metrics.deliveries.clone(),
            metrics.delivery_attempts.clone(),
            cluster.as_ref().map(|c| c.deliveries()),
        )?;
        let mut warnings = found.warnings;
        let search = match crate::search::Search::open(&config) {
            // In a cluster the records are rows: the index reads them from the database.
            Ok(search) if cluster.is_some() => Some(search.with_records(records.clone())),
            Ok(search) => Some(search),
            Err(e) => {
                let why = e.to_string();
                warnings.push(crate::startup::StartupProblem::SearchOff { why });
                None
            }
        };
        // Away marks, routes' rounds and "seen" marks: shared by the nodes of a cluster.
        let people = cluster.as_ref().map(|c| c.people());
        let app = App {
            inner: Arc::new(Inner {
                search,
                metrics,
                outbox,
                audiences: Default::default(),
                seen: match &people {
                    Some(p) => views::seen::Seen::shared(&config.data_dir, p.clone()),
                    None => views::seen::Seen::open(&config.data_dir),
                },
                away: match &people {
                    Some(p) => review::away::Away::shared(&config.data_dir, p.clone()),
                    None => review::away::Away::open(&config.data_dir),
                },
                rota: match &people {
                    Some(p) => review::rota::Rota::shared(&config.data_dir, p.clone()),
                    None => review::rota::Rota::open(&config.data_dir),
                },
                tokens,
                logins,
                keyring,
                events,
                workspaces: RwLock::default(),
                by_root: RwLock::default(),
                roots: found.roots.clone(),
                keys: Mutex::default(),
                ready: AtomicBool::new(false),
                failing: std::sync::OnceLock::new(),
                alerts: Mutex::default(),
                verdicts: Mutex::default(),
                history: Default::default(),
                agenda: Default::default(),
                order: Default::default(),
                invalid_in: Mutex::default(),
                listings: Default::default(),
                intake: std::sync::OnceLock::new(),
                hashes: Default::default(),
                ledger,
                records,
                cluster,
                blobs: crate::blobs::Blobs::new(&config.data_dir),
                shutdown: CancellationToken::new(),
                me: crate::locks::Owner {
                    host: crate::host::hostname(),
                    pid: std::process::id(),
                    started_at: crate::clock::now_rfc3339(),
                    lock: None,
                },
                life: crate::locks::life::Life::new(&crate::host::hostname(), std::process::id()),
                owners: Mutex::default(),
                waiting: Mutex::default(),
                unserved: Mutex::default(),
                config,
            }),
        };
        warnings.extend(outbox_warnings);
        runtime::load::serve_all(&found.workspaces, |ws| {
            // One unreadable workspace must not keep the others from being served: it is
            // named on /healthz and tried again (see `served`).
            let _ = app.serve_workspace(ws.clone());
        });
        Ok(Opened {
            app,
            admin_token,
            admin_password,
            warnings,
        })
    }

    /// Adds a workspace found after start-up (a new folder under a root). Returns it, or
    /// `None` when one of that name is already known.
    pub fn add_workspace(&self, ws: Workspace) -> anyhow::Result<Option<Arc<Served>>> {
        if self.workspace(&ws.name).is_some() || !self.own(&ws) {
            return Ok(None);
        }
        let runtime::load::Loaded {
            ws: loaded,
            findings,
        } = runtime::load::load(
            &ws,
            &self.inner.config.data_dir,
            &self.inner.ledger,
            &self.inner.records,
            self.inner.cluster.as_ref().map(|c| c.anchors()),
        )
        .inspect_err(|_| self.disown(&ws))?;
        let loaded = Arc::new(loaded);
        {
            let st = loaded.lock();
            let mut keys = self.keys();
            for key in st.records.keys() {
                // Records come from the store, so a key in two workspaces is the operator's
                // doing (two data_dir copies merged), never an agent's.
                match keys.get(key) {
                    Some(owner) => tracing::warn!(
                        key, workspace = %ws.name, owner = %owner,
                        "key recorded in two workspaces; the API serves the first"
                    ),
                    None => {
                        keys.insert(key.clone(), ws.name.clone());
                    }
                }
            }
            for rec in st.records.values() {
                let routed = rec.meta.route.as_ref();
                self.note_audience(&rec.meta.key, &rec.handoff, routed, &ws.name);
                self.note_claim(&ws.name, rec);
            }
            let pending = st.records.values().filter(|r| r.is_pending()).count();
            self.metrics().pending.inc_by(pending as i64);
        }
        // Before anything is appended: what is owed comes first, in log order.
        self.respool(&loaded);
        self.check_modes(&loaded, true);
        self.refresh_alerts(&loaded);
        self.announce_breaks(&loaded);
        for finding in findings {
            self.tampered(&loaded, finding);
        }
        self.recover_events(&loaded);
        self.withdraw_superseded(&loaded);
        self.inner
            .by_root
            .write()
            .expect("lock holders never panic")
            .insert(ws.root.clone(), loaded.clone());
        let mut all = self
            .inner
            .workspaces
            .write()
            .expect("lock holders never panic");
        all.insert(ws.name.clone(), loaded.clone());
        self.metrics().workspaces.set(all.len() as i64);
        self.inner.agenda.now(&ws.name);
        self.file_records(&loaded);
        self.inner.history.seed(loaded.clone());
        Ok(Some(loaded))
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    /// When this daemon started (RFC 3339), as its heartbeat and owner locks say.
    pub fn started_at(&self) -> &str {
        &self.inner.me.started_at
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub fn roots(&self) -> &[PathBuf] {
        &self.inner.roots
    }

    /// Cancelled when the daemon shuts down; long-lived work (SSE streams, ingest) ends on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Marks the daemon as failing, for health checks to report.
    pub fn set_failing(&self, reason: &str) {
        tracing::error!(reason, "daemon failing");
        let _ = self.inner.failing.set(reason.to_string());
    }

    pub fn failing(&self) -> Option<&str> {
        self.inner.failing.get().map(String::as_str)
    }

    pub fn set_ready(&self) {
        self.inner.ready.store(true, Ordering::Release);
    }
    /// Whether the start-up scan is done (agent files written before start are processed).
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    pub fn authenticate(&self, token: &str) -> Option<Actor> {
        self.inner.tokens.authenticate(token).cloned()
    }

    /// Signs a person in to the pages (slow by design: argon2id; call off async workers).
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Result<(String, crate::login::SignedIn), crate::login::LoginError> {
        self.inner.logins.sign_in(name, password, addr)
    }

    /// Who holds the session with this id, if it is live.
    pub fn session(&self, id: &str) -> Option<crate::login::SignedIn> {
        self.inner.logins.session(id)
    }

    pub fn sign_out(&self, id: &str) {
        self.inner.logins.sign_out(id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The roots of every workspace found: served here, or waiting (another daemon or node
    /// serves it, or it could not be opened yet).
    pub fn found_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self
            .workspaces()
            .iter()
            .map(|w| w.workspace.root.clone())
            .collect();
        let waiting = self.inner.waiting.lock().unwrap_or_else(|e| e.into_inner());
        roots.extend(waiting.keys().cloned());
        let unserved = self
            .inner
            .unserved
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        roots.extend(unserved.keys().cloned());
        roots
    }

    pub fn workspaces(&self) -> Vec<Arc<Served>> {
        let all = self
            .inner
            .workspaces
            .read()
            .expect("lock holders never panic");
        all.values().cloned().collect()
    }

    pub fn workspace(&self, name: &str) -> Option<Arc<Served>> {
        let all = self
            .inner
            .workspaces
            .read()
            .expect("lock holders never panic");
        all.get(name).cloned()
    }

    /// The workspace whose root is `root` exactly.
    pub fn workspace_at(&self, root: &Path) -> Option<Arc<Served>> {
        let all = self.inner.by_root.read().expect("lock holders never panic");
        all.get(root).cloned()
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.inner.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The workspace that owns `key`, if the key is known.
    fn ws_of_key(&self, key: &str) -> Option<Arc<Served>> {
        let name = self.keys().get(key).cloned()?;
        self.workspace(&name)
    }

    /// Writes what is kept off the request path and not yet written (the sessions); at
    /// shutdown.
    pub fn flush_sessions(&self) {
        self.inner.logins.flush();
    }

    /// Makes every anchor that moved durable: all of them in one append to the ledger, with
    /// one sync (about once a second, and at shutdown).
    pub fn flush_anchors(&self) {
        let moved: Vec<(Arc<Served>, crate::audit::Anchor)> = self
            .workspaces()
            .into_iter()
            .filter_map(|ws| ws.audit.anchor_to_flush().map(|a| (ws, a)))
            .collect();
        if moved.is_empty() {
            return;
        }
        let entries: Vec<_> = moved
            .iter()
            .map(|(ws, anchor)| (ws.anchors.tag.clone(), anchor.clone()))
            .collect();
        if let Err(e) = self.inner.ledger.append(&entries) {
            for (ws, _) in &moved {
                ws.audit.flush_failed();
            }
            self.metrics().error("audit_anchor");
            tracing::warn!(error = %e, "cannot flush the audit anchors; trying again in a second");
        }
    }
}
