//! `App`: the daemon's core, a cheap-to-clone handle over its parts. Every state change is a
//! transition of the review state machine (`app.cx().decide(..)`, the ingest of agent
//! files...), run in a context (`review::Cx`) that lends it only the parts it may use; every
//! change becomes an event: appended to the workspace's audit log, broadcast to subscribers
//! (SSE), counted in the metrics. The core is synchronous file work and knows nothing of
//! HTTP; async callers run it through `blocking::run` (work that waits on files and locks)
//! or `blocking::compute` (a search).
//!
//! The folder, from the bottom up: `model` (the record's types, importing no sibling) and
//! `state` (what the daemon holds of one workspace); `review`, the transitions; `views`, the
//! read models; `runtime`, loading, serving and the housekeeping. Transitions never call a
//! view's query, and views change nothing.

mod a2a;
mod model;
mod registry;
mod review;
mod rewrites;
mod runtime;
mod state;
mod views;

pub use views::{export, grant_replay, replay};

pub use model::{Approval, Claim, DecideError, Decided, Escalation, Progress, Routed};
pub use review::approved::{ApprovedFile, MAX_PROMOTED_BYTES};
pub use review::assign::{Load, LoadError};
pub use review::away::{AwayError, Presence};
pub use review::bulk::{
    check_items as check_bulk_items, check_keys as check_bulk_keys, BulkError, BulkItem, KeyResult,
    MAX_BULK,
};
pub use review::claim::{ClaimError, ClaimView};
pub use review::decide::DecisionRequest;
pub use review::grants::{Grant, GrantError, GrantRequest, GrantScope, GrantView};
pub use review::locks::{LockApiError, LockSeen};
pub use review::ownership::{OwnerError, Ownership};
pub use review::records::published_copy_of;
pub use review::step_up::PasskeyAnswer;
pub use review::upload::{Target, UploadError, Uploaded};
pub use review::Cx;
pub use runtime::buttons::Closed as ButtonClosed;
pub use runtime::chat::{ChatDone, ChatError, ChatTaken};
pub use runtime::chat_links::{
    ChatLinkError, ChatLinkView, LinkAnswerError, LinkConfirmError, LinkRefused, LinkToConfirm,
};
pub use runtime::digest_cadence::{
    Cadence, CadenceDamage, CadenceError, MAX_EVERY_MIN as MAX_DIGEST_EVERY_MIN,
};
pub use runtime::leases::Scope;
pub use runtime::links::{CheckedLink, LinkError, LinkHolder, LinkTarget};
pub use runtime::mattermost::{MattermostError, MattermostTaken};
pub use runtime::passkeys::{PasskeyProof, PasskeyView};
pub use runtime::push::{PushActError, PushActed, PushError, SubscriptionView};
pub use state::{CheckpointRecord, Record, Review, Served};
pub use views::agreement::{AgreementDay, RouteAgreement};
pub use views::artifact_preview::{Against, Body, Preview, Source};
pub use views::artifact_raw::MAX_IMAGE_BYTES;
pub use views::artifact_raw::{Raw, MAX_RAW_BYTES};
pub use views::artifact_view::{approved_path, ArtifactView, Change, Check, ViewError};
pub use views::attention::Attentiveness;
pub use views::changes::{Changes, Comparison, FieldChange};
pub use views::history::{HistoryError, HistoryEvent, HistoryQuery, MAX_PAGE as MAX_EVENTS_PAGE};
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
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

/// The daemon's parts. `App` is their registry: each part owns one concern. The transitions
/// (review/) borrow some of them through `Cx`; the read models (views/) and the runtime's
/// methods of `App` use the parts they need.
struct Inner {
    config: Config,
    metrics: Metrics,
    shutdown: CancellationToken,
    /// Who may call: API tokens and people's sign-ins.
    access: Access,
    /// The workspaces served, found by name, root or handoff key.
    registry: registry::Registry,
    /// Where a transition's change goes: records, audit, signing key, outbox, subscribers.
    commit: review::Commit,
    /// What the transitions keep across workspaces beside the records.
    common: Arc<review::Common>,
    /// The read models' kept orders and caches.
    views: views::Views,
    /// Which workspaces this daemon serves, its readiness, and what it must tell operators.
    runtime: runtime::Runtime,
    /// Full-text search; `None` when its index could not be opened (search answers 503).
    search: Option<crate::search::Search>,
    /// This node's place in a cluster (`[cluster]`), if there is one.
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Who may call the daemon.
struct Access {
    tokens: Tokens,
    logins: crate::login::Logins,
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
        // What every node must read alike (grants, chat links, the chat keys): one keeper for
        // the outbox and the transitions, so a key is made under one lock.
        let documents: Arc<dyn crate::documents::Documents> = match &cluster {
            Some(c) => c.documents(),
            None => Arc::new(crate::documents::InDataDir::new(&config.data_dir)),
        };
        let (outbox, outbox_warnings) = crate::outbox::Outbox::open(
            &config,
            metrics.deliveries.clone(),
            metrics.delivery_attempts.clone(),
            cluster.as_ref().map(|c| c.deliveries()),
            metrics.push.clone(),
            metrics.errors.clone(),
            documents.clone(),
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
                metrics,
                shutdown: CancellationToken::new(),
                access: Access { tokens, logins },
                registry: registry::Registry::new(found.roots.clone()),
                commit: review::Commit {
                    records,
                    ledger,
                    keyring,
                    outbox,
                    audiences: Default::default(),
                    events,
                },
                common: Arc::new(review::Common::open(
                    &config.data_dir,
                    people.as_ref(),
                    Some(documents),
                    &config.public_url,
                )),
                views: views::Views::open(&config.data_dir, people.as_ref()),
                runtime: runtime::Runtime::new(),
                search,
                cluster,
                config,
            }),
        };
        // A route that asks for passkeys cannot work where the configuration rules them out:
        // refuse to start, saying why. A damaged passkeys document refuses only what reads it
        // (named on /healthz until it is mended), never the whole daemon.
        let asks_passkeys = app.config().routes.iter().any(|r| r.step_up.is_some());
        if let (true, Err(why)) = (asks_passkeys, app.passkeys_relying_party()) {
            anyhow::bail!("a route has step_up = \"passkey\", but passkeys cannot be used: {why}");
        }
        if let Some(why) = app.passkeys_damage() {
            app.metrics().error("passkeys_damaged");
            tracing::error!(%why, "the registered passkeys cannot be read: approvals on routes that ask for a passkey are refused until they are mended");
        }
        warnings.extend(outbox_warnings);
        let started = std::time::Instant::now();
        runtime::load::serve_all(&found.workspaces, |ws| {
            // One unreadable workspace must not keep the others from being served: it is
            // named on /healthz and tried again (see `served`).
            if let Ok(Some(served)) = app.serve_workspace(ws.clone()) {
                // Agents learn at once that a daemon serves them; written here, where the
                // loaders' reads overlap it, these writes are also done before the start-up
                // scan's syncs begin. Through the handle served: pinned to its folder.
                app.beat_new(&served.workspace);
            }
        });
        // A folder skipped for its name is listed on /healthz as a name conflict (and tried
        // again, served if the other one goes): through the same path as one found later.
        for problem in &warnings {
            if let crate::startup::StartupProblem::WorkspaceNameTaken { skipped, .. } = problem {
                if let Ok(ws) = Workspace::open(skipped) {
                    let _ = app.serve_workspace(ws);
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            workspaces = app.workspaces().len(),
            seconds,
            "workspaces loaded"
        );
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
        // Held until the workspace is in the registry (or not served): checked after it.
        let Some(_loading) = runtime::serving::Loading::take(self, &ws) else {
            return Ok(None);
        };
        if self.workspace(&ws.name).is_some() {
            return Ok(None);
        }
        // Which workspace the folder is: a moved one keeps its id (and leaves its old name).
        let runtime::moves::Identified { ws, found } = runtime::moves::identify(self, ws)?;
        if !self.own(&ws) {
            return Ok(None);
        }
        // From here every write on its share is fenced by the lease just taken (in a cluster).
        let ws = runtime::leases::fenced(self, ws);
        let runtime::load::Loaded {
            ws: loaded,
            findings,
        } = runtime::load::load_checked(
            &ws,
            &self.inner.config.data_dir,
            &self.inner.commit.ledger,
            &self.inner.commit.records,
            self.inner.cluster.as_ref().map(|c| c.anchors()),
            &self.inner.runtime.copies,
            // Before the load writes anything in the folder it opened (see `takeover`).
            |ws, opened| runtime::takeover::opened(self, ws, opened),
        )
        .inspect_err(|_| self.disown(&ws))?;
        let loaded = Arc::new(loaded);
        {
            let st = loaded.lock();
            self.inner.registry.claim_keys(&ws.name, st.records.keys());
            for rec in st.records.values() {
                let routed = rec.meta.route.as_ref();
                self.cx()
                    .note_audience(&rec.meta.key, &rec.handoff(), routed, &ws.name);
                self.cx().note_claim(&ws.name, rec);
            }
            let pending = st.records.values().filter(|r| r.is_pending()).count();
            self.metrics().pending.inc_by(pending as i64);
        }
        // Before anything is appended: what is owed comes first, in log order.
        self.cx().respool(&loaded);
        self.check_modes(&loaded, true);
        self.refresh_alerts(&loaded);
        self.cx().announce_breaks(&loaded);
        for finding in findings {
            self.cx().tampered(&loaded, finding);
        }
        self.cx().tell_memos(&loaded);
        self.recover_events(&loaded);
        runtime::moves::settle(self, &loaded, &found);
        self.cx().withdraw_superseded(&loaded);
        self.inner.registry.insert(loaded.clone(), |served| {
            self.inner.common.agenda.now(&ws.name);
            self.file_records(&loaded);
            self.inner.views.history.seed(loaded.clone());
            self.metrics().workspaces.set(served as i64);
        });
        if !runtime::leases::keep_if_leased(self, &ws) {
            return Ok(None);
        }
        // The folder it was loaded from must be the one the cluster served it from (a folder
        // swapped in after `takeover::check` looked at the path got no write: the handle is
        // pinned to the folder the load opened, `takeover::opened` compared).
        let folder = self.workspace_at(&ws.root).and_then(|s| s.folder);
        if !runtime::takeover::keep(self, &ws, folder) {
            self.unserve(&crate::store::tag(&ws));
            return Ok(None);
        }
        Ok(Some(loaded))
    }

    /// The context the review state machine's transitions run in (see `review::Cx`).
    pub fn cx(&self) -> Cx<'_> {
        let parts = &*self.inner;
        Cx {
            config: &parts.config,
            metrics: &parts.metrics,
            registry: &parts.registry,
            commit: &parts.commit,
            common: &parts.common,
            notes: &parts.views,
        }
    }

    /// Connects the core to the ingest thread (once; the pipeline calls it at spawn).
    pub fn connect_intake(
        &self,
        tx: std::sync::mpsc::SyncSender<crate::watch::Signal>,
        overflow: Arc<std::sync::atomic::AtomicBool>,
    ) {
        self.inner.common.intake.connect(tx, overflow);
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    /// When this daemon started (RFC 3339), as its heartbeat and owner locks say.
    pub fn started_at(&self) -> &str {
        &self.inner.runtime.me.started_at
    }
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
    pub fn roots(&self) -> &[PathBuf] {
        &self.inner.registry.roots
    }

    /// Cancelled when the daemon shuts down; long-lived work (SSE streams, ingest) ends on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Marks the daemon as failing, for health checks to report.
    pub fn set_failing(&self, reason: &str) {
        tracing::error!(reason, "daemon failing");
        let _ = self.inner.runtime.failing.set(reason.to_string());
    }

    pub fn failing(&self) -> Option<&str> {
        self.inner.runtime.failing.get().map(String::as_str)
    }

    /// Why data_dir cannot take a write now (full, read-only, gone, or its disk failing
    /// writes), if it cannot: a byte written to a probe file, synced, and removed. Every
    /// decision is committed there first, so a daemon that cannot write it answers 503 to
    /// each: health says so. A disk that fails writeback takes the byte into memory and fails
    /// only its sync, so the sync is part of the probe; made at most every few seconds (a
    /// sync on a busy disk waits for others' writes, and health may be asked often), its
    /// answer kept meanwhile. A failed syncfs of the store's group commit is named too, until
    /// a restart: the disk lost a write, though later ones may pass.
    pub fn data_dir_problem(&self) -> Option<String> {
        use std::io::Write;
        use std::time::{Duration, Instant};
        static SYNCED: std::sync::Mutex<Option<(Instant, Option<String>)>> =
            std::sync::Mutex::new(None);
        let data_dir = &self.inner.config.data_dir;
        let probe = data_dir.join(".health-probe");
        let written = std::fs::File::create(&probe).and_then(|mut f| {
            f.write_all(b"1")?;
            let mut synced = SYNCED.lock().unwrap_or_else(|e| e.into_inner());
            let due = synced
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= Duration::from_secs(5));
            if due {
                // Not through `fsync`'s counters: the syncs per handoff they pin would then
                // depend on how often health is asked.
                let answer = f.sync_all().err().map(|e| format!("a sync failed: {e}"));
                *synced = Some((Instant::now(), answer));
            }
            match synced.as_ref().and_then(|(_, answer)| answer.clone()) {
                Some(why) => Err(std::io::Error::other(why)),
                None => Ok(()),
            }
        });
        let _ = std::fs::remove_file(&probe);
        let problem = match written {
            Err(e) => format!(
                "{} cannot be written: {e}; decisions cannot be recorded (free space, fix its \
                 permissions, or check its disk: dmesg)",
                data_dir.display()
            ),
            Ok(()) => match crate::workspace::fsync::group_totals().2 {
                0 => return None,
                failed => format!(
                    "a group sync (syncfs) of the store or of an audit log failed {failed} \
                     time(s) since the daemon started: the disk lost a write (see the log, and \
                     the kernel's: dmesg); the store syncs file by file since. Check the disk, \
                     then restart the daemon"
                ),
            },
        };
        self.metrics().error("data_dir");
        Some(problem)
    }

    pub fn set_ready(&self) {
        self.inner.runtime.ready.store(true, Ordering::Release);
        self.inner.views.history.begin();
        self.start_reverify(&self.inner.runtime.reverify);
    }
    /// Whether the start-up scan is done (agent files written before start are processed).
    pub fn is_ready(&self) -> bool {
        self.inner.runtime.ready.load(Ordering::Acquire)
    }

    pub fn authenticate(&self, token: &str) -> Option<Actor> {
        self.inner.access.tokens.authenticate(token).cloned()
    }

    /// Signs a person in to the pages (slow by design: argon2id; call off async workers).
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Result<(String, crate::login::SignedIn), crate::login::LoginError> {
        self.inner.access.logins.sign_in(name, password, addr)
    }

    /// Checks a signed-in person's password again (slow: argon2id).
    pub fn recheck_password(
        &self,
        name: &str,
        password: &str,
        addr: Option<std::net::IpAddr>,
    ) -> Result<(), crate::login::LoginError> {
        self.inner.access.logins.recheck(name, password, addr)
    }

    /// Who holds the session with this id, if it is live.
    pub fn session(&self, id: &str) -> Option<crate::login::SignedIn> {
        self.inner.access.logins.session(id)
    }

    pub fn sign_out(&self, id: &str) {
        self.inner.access.logins.sign_out(id)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.commit.events.subscribe()
    }

    /// The roots of every workspace found: served here, or waiting (another daemon or node
    /// serves it, or it could not be opened yet).
    pub fn found_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self
            .workspaces()
            .iter()
            .map(|w| w.workspace.root.clone())
            .collect();
        let waiting = self.inner.runtime.waiting();
        roots.extend(waiting.keys().cloned());
        let unserved = self.inner.runtime.unserved();
        roots.extend(unserved.keys().cloned());
        roots
    }

    pub fn workspaces(&self) -> Vec<Arc<Served>> {
        self.inner.registry.all()
    }

    /// How many workspaces are served (only ever added: see `Registry::count`).
    pub fn workspaces_served(&self) -> usize {
        self.inner.registry.count()
    }

    pub fn workspace(&self, name: &str) -> Option<Arc<Served>> {
        self.inner.registry.get(name)
    }

    /// The workspace whose root is `root` exactly.
    pub fn workspace_at(&self, root: &Path) -> Option<Arc<Served>> {
        self.inner.registry.at(root)
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.inner.registry.keys()
    }

    /// The workspace (or canary place) that owns `key`, if the key is known: callers check
    /// `Served::seen_by`.
    fn ws_of_key(&self, key: &str) -> Option<Arc<Served>> {
        let name = self.keys().get(key).cloned()?;
        self.inner.registry.owner(&name)
    }

    /// Writes what is kept off the request path and not yet written (the sessions); at
    /// shutdown.
    pub fn flush_sessions(&self) {
        self.inner.access.logins.flush();
    }

    /// Makes every anchor that moved durable: all of them in one append to the ledger, with
    /// one sync (about once a second, and at shutdown).
    pub fn flush_anchors(&self) {
        let moved: Vec<(Arc<Served>, crate::audit::Anchor)> = self
            .inner
            .registry
            .pick(|ws| ws.audit.anchor_to_flush().map(|a| (ws.clone(), a)));
        if moved.is_empty() {
            return;
        }
        let entries: Vec<_> = moved
            .iter()
            .map(|(ws, anchor)| (ws.anchors.tag.clone(), anchor.clone()))
            .collect();
        if let Err(e) = self.inner.commit.ledger.append(&entries) {
            for (ws, _) in &moved {
                ws.audit.flush_failed();
            }
            self.metrics().error("audit_anchor");
            tracing::warn!(error = %e, "cannot flush the audit anchors; trying again in a second");
        }
    }
}
