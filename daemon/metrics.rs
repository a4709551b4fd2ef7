//! Prometheus metrics: what an operator graphs and alerts on.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// A route's name (`none` for handoffs no route matched).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

/// A reviewer's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReviewerLabel {
    pub reviewer: String,
}

/// A histogram of each label's own, made with the same buckets.
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    /// Handoffs closed, by outcome.
    pub handoffs: Family<OutcomeLabel, Counter>,
    /// Mail action links followed, by what came of it (`confirm`, `decided`, or why not).
    pub action_links: Family<OutcomeLabel, Counter>,
    /// Chat buttons clicked, by what came of it (`decided`, or why not).
    pub chat_clicks: Family<OutcomeLabel, Counter>,
    /// Web Push subscriptions and attempts, by outcome: subscribed, unsubscribed, sent,
    /// failed, removed (the push service said the subscription is gone).
    pub push: Family<OutcomeLabel, Counter>,
    /// Passkey ceremonies, by outcome: registered, removed, asserted, refused (an approval
    /// on a `step_up = "passkey"` route without a good assertion).
    pub passkeys: Family<OutcomeLabel, Counter>,
    /// Handoffs a route's timeout acted on, by what it did (rejected, expired, escalated).
    pub timeouts: Family<OutcomeLabel, Counter>,
    pub received: Counter,
    /// A2A JSON-RPC calls answered, by method (`SendMessage`, `CancelTask`, ... as v1.0 names
    /// them) and by `error` for those answered with an error.
    pub a2a_calls: Family<KindLabel, Counter>,
    pub pending: Gauge,
    /// File change seen -> handoff processed (waits in the dispatcher and a lane included).
    pub ingest_seconds: Histogram,
    /// A worker takes the handoff up -> processed: the cost of the path itself.
    pub ingest_service_seconds: Histogram,
    pub rescans: Counter,
    pub watches: Gauge,
    pub errors: Family<KindLabel, Counter>,
    /// A node's late write (past its lease, after its successor's) recognised and set aside
    /// as recovery, not tampering: `late_write` (an audit append), `late_copy` (a published
    /// copy of a state the store committed earlier).
    pub recoveries: Family<KindLabel, Counter>,
    pub events: Family<TypeLabel, Counter>,
    pub scan_entries: Gauge,
    pub scan_seconds: Gauge<f64, AtomicU64>,
    pub workspaces: Gauge,
    /// Workspaces that cannot be opened (named on /healthz), tried again every few seconds.
    pub workspaces_unserved: Gauge,
    /// Workspace folders not served because another folder of their name is (named on
    /// /healthz `name_conflicts`).
    pub workspace_name_conflicts: Gauge,
    /// Workspaces recognised in a folder moved (renamed) under the roots.
    pub workspaces_moved: Counter,
    pub workspaces_recreated: Counter,
    /// Served workspaces whose folder was deleted or moved out of the roots while running.
    pub workspaces_removed: Counter,
    /// Workspace leases this node holds in a cluster (0 outside one).
    pub leases_held: Gauge,
    /// Workspaces whose records changed since their store snapshot was brought up to date.
    pub store_unsettled: Gauge,
    /// Store files found damaged (not as committed): their workspaces are read-only.
    pub store_damaged_files: Gauge,
    pub copies_unsettled: Gauge,
    /// Tampering found and not yet acknowledged with `baton audit ack`.
    pub tamper_alerts: Gauge,
    /// Workspaces whose audit log's place is taken (see `audit::Blocked`): nothing is decided
    /// there until a person clears it.
    pub audit_logs_blocked: Gauge,
    /// Bytes of audit logs read by the background re-verify.
    pub audit_reverified_bytes: Counter,
    /// Audit logs the background re-verify found changed behind the daemon.
    pub audit_reverify_broken: Counter,
    /// Rounds of the background re-verify finished (every log read once each).
    pub audit_reverify_rounds: Counter,
    /// How long the last round of the background re-verify took, in seconds.
    pub audit_reverify_round_seconds: Gauge<f64, AtomicU64>,
    /// Notifications in the outbox, by state (pending, delivered, dead).
    pub deliveries: Family<StateLabel, Gauge>,
    /// Delivery attempts, by outcome (delivered, failed).
    pub delivery_attempts: Family<OutcomeLabel, Counter>,
    /// Searchable documents and index segments, as of the last query.
    pub search_documents: Gauge,
    pub search_segments: Gauge,
    /// Segments whose ranking stopped at the word's best score there (`index::ceiling`),
    /// since the index was opened, as of the last query.
    pub search_ceiling_stops: Gauge,
    pub search_seconds: Histogram,
    /// How long a query waited for its turn on the compute pool (`blocking::compute`).
    pub search_wait_seconds: Histogram,
    /// Times the search index was found removed from under the daemon (each is rebuilt).
    pub search_index_lost: Counter,
    /// Files and records the search indexer catalogued (stat'ed) to find what changed.
    pub search_catalogued: Counter,
    /// Folders the search indexer cannot list now (their documents kept as last indexed).
    pub search_unlisted_folders: Gauge,
    /// Route policies (`auto_approve_if`) whose evaluation failed or gave no boolean, each
    /// leaving its handoff to people (`crate::policy`).
    pub policy_errors: Counter,
    /// Seconds from a reviewer's first view of a revision to their decision of it, by route.
    pub review_seconds: HistogramFamily<RouteLabel>,
    /// Approvals given with an artifact the revision changed left unopened, by route.
    pub approvals_unopened: Family<RouteLabel, Counter>,
    /// Approvals a route's `min_review_s` or `require_open_changed` held back, by route.
    pub approvals_held: Family<RouteLabel, Counter>,
    /// Reviewers' digest mails spooled (see `app/runtime/digests.rs`).
    pub digests: Counter,
    /// Handoffs each digest listed.
    pub digest_items: Histogram,
    /// Reviewers' scoped grants, by what happened: created, revoked, approved (a handoff it
    /// approved at receipt), refused (a grant asked for and not made).
    pub grants: Family<OutcomeLabel, Counter>,
    /// Canaries filed into reviewers' queues (see `app/review/canary.rs`).
    pub canaries_filed: Counter,
    /// Canaries a reviewer rejected or sent back, by reviewer.
    pub canaries_caught: Family<ReviewerLabel, Counter>,
    /// Canaries a reviewer approved, by reviewer.
    pub canaries_missed: Family<ReviewerLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let m = Metrics {
            handoffs: Family::default(),
            action_links: Family::default(),
            chat_clicks: Family::default(),
            push: Family::default(),
            passkeys: Family::default(),
            timeouts: Family::default(),
            received: Counter::default(),
            a2a_calls: Family::default(),
            pending: Gauge::default(),
            ingest_seconds: Histogram::new(latency_buckets()),
            ingest_service_seconds: Histogram::new(latency_buckets()),
            rescans: Counter::default(),
            watches: Gauge::default(),
            errors: Family::default(),
            recoveries: Family::default(),
            events: Family::default(),
            scan_entries: Gauge::default(),
            scan_seconds: Gauge::default(),
            workspaces: Gauge::default(),
            workspaces_unserved: Gauge::default(),
            workspace_name_conflicts: Gauge::default(),
            workspaces_moved: Counter::default(),
            workspaces_recreated: Counter::default(),
            workspaces_removed: Counter::default(),
            leases_held: Gauge::default(),
            store_unsettled: Gauge::default(),
            store_damaged_files: Gauge::default(),
            copies_unsettled: Gauge::default(),
            tamper_alerts: Gauge::default(),
            audit_logs_blocked: Gauge::default(),
            audit_reverified_bytes: Counter::default(),
            audit_reverify_broken: Counter::default(),
            audit_reverify_rounds: Counter::default(),
            audit_reverify_round_seconds: Gauge::default(),
            deliveries: Family::default(),
            delivery_attempts: Family::default(),
            search_documents: Gauge::default(),
            search_segments: Gauge::default(),
            search_ceiling_stops: Gauge::default(),
            search_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            search_wait_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            search_index_lost: Counter::default(),
            search_catalogued: Counter::default(),
            search_unlisted_folders: Gauge::default(),
            policy_errors: Counter::default(),
            review_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 15))
            }),
            approvals_unopened: Family::default(),
            approvals_held: Family::default(),
            digests: Counter::default(),
            digest_items: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            grants: Family::default(),
            canaries_filed: Counter::default(),
            canaries_caught: Family::default(),
            canaries_missed: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "handoffs_decided",
            "Handoffs closed, by outcome",
            m.handoffs.clone(),
        );
        registry.register(
            "action_links",
            "Mail action links followed, by what came of it: confirm (a GET), decided, or why not",
            m.action_links.clone(),
        );
        registry.register(
            "push",
            "Web Push subscriptions and attempts, by outcome: subscribed, unsubscribed, sent, failed, or removed (the push service said the subscription is gone)",
            m.push.clone(),
        );
        registry.register(
            "passkeys",
            "Passkey ceremonies, by outcome: registered, removed, asserted, or refused (an approval on a step_up = \"passkey\" route without a good assertion)",
            m.passkeys.clone(),
        );
        registry.register(
            "chat_clicks",
            "Chat buttons clicked (Slack), by what came of it: decided, or why not",
            m.chat_clicks.clone(),
        );
        registry.register(
            "handoff_timeouts",
            "Handoffs nobody decided within their route's timeout_s, by what on_timeout did (rejected, expired, escalated)",
            m.timeouts.clone(),
        );
        registry.register(
            "handoffs_received",
            "Handoffs received (new keys)",
            m.received.clone(),
        );
        registry.register(
            "a2a_calls",
            "A2A JSON-RPC calls answered, by method (v1.0 names), and those answered with an error (kind error)",
            m.a2a_calls.clone(),
        );
        registry.register(
            "handoffs_pending",
            "Handoffs waiting for a decision",
            m.pending.clone(),
        );
        registry.register(
            "ingest_latency_seconds",
            "Time from a handoff file change to the handoff being processed",
            m.ingest_seconds.clone(),
        );
        registry.register(
            "ingest_service_seconds",
            "Time from a worker taking a changed handoff file up to the handoff being processed",
            m.ingest_service_seconds.clone(),
        );
        registry.register(
            "rescans",
            "Workspace rescans (overflow, watcher error, periodic)",
            m.rescans.clone(),
        );
        registry.register("watches", "Folders under watch", m.watches.clone());
        registry.register("errors", "Errors, by kind", m.errors.clone());
        registry.register(
            "recoveries",
            "Late writes of a node that had lost a workspace's lease, set aside as recovery, by kind",
            m.recoveries.clone(),
        );
        registry.register("events", "Events emitted, by type", m.events.clone());
        registry.register(
            "scan_entries",
            "Entries walked by the last start-up scan",
            m.scan_entries.clone(),
        );
        registry.register(
            "scan_duration_seconds",
            "Duration of the last start-up scan",
            m.scan_seconds.clone(),
        );
        registry.register("workspaces", "Workspaces watched", m.workspaces.clone());
        registry.register(
            "workspaces_moved",
            "Workspaces recognised in a folder moved (renamed) under the roots",
            m.workspaces_moved.clone(),
        );
        registry.register(
            "workspaces_recreated",
            "Workspace folders found deleted and made again at their path (served as new workspaces)",
            m.workspaces_recreated.clone(),
        );
        registry.register(
            "workspaces_removed",
            "Served workspaces whose folder was deleted or moved out of the roots while the daemon ran",
            m.workspaces_removed.clone(),
        );
        registry.register(
            "workspaces_unserved",
            "Workspaces that cannot be opened (named on /healthz), tried again every few seconds",
            m.workspaces_unserved.clone(),
        );
        registry.register(
            "workspace_name_conflicts",
            "Workspace folders not served because another folder of the same name under the roots is (named on /healthz name_conflicts): rename one of the two",
            m.workspace_name_conflicts.clone(),
        );
        registry.register(
            "store_unsettled",
            "Workspaces whose records changed since their snapshot was last brought up to date (a start reads those records file by file)",
            m.store_unsettled.clone(),
        );
        registry.register(
            "store_damaged_files",
            "Store files found not as committed (truncated, changed, emptied, removed); their workspaces are read-only until `baton repair`",
            m.store_damaged_files.clone(),
        );
        registry.register(
            "audit_logs_blocked",
            "Workspaces whose audit log cannot be written in its place (a folder where .baton/events.jsonl goes): every decision there is refused until it is moved away (see /healthz audit_log_blocked)",
            m.audit_logs_blocked.clone(),
        );
        registry.register(
            "copies_unsettled",
            "Workspaces whose published record copies were rewritten since their fingerprints were last kept (a start reads those copies again)",
            m.copies_unsettled.clone(),
        );
        registry.register(
            "leases_held",
            "Workspace leases this node holds in a cluster",
            m.leases_held.clone(),
        );
        registry.register_collector(Box::new(Syncs));
        registry.register_collector(Box::new(Polls));
        registry.register(
            "tamper_alerts",
            "Tampering found in workspaces and not yet acknowledged (baton audit ack)",
            m.tamper_alerts.clone(),
        );
        registry.register(
            "audit_reverified_bytes",
            "Bytes of audit logs read again by the background re-verify ([audit] reverify_bytes_per_s)",
            m.audit_reverified_bytes.clone(),
        );
        registry.register(
            "audit_reverify_broken",
            "Audit logs the background re-verify found changed behind the daemon (each breaks the chain and raises a tamper alert)",
            m.audit_reverify_broken.clone(),
        );
        registry.register(
            "audit_reverify_rounds",
            "Rounds of the background re-verify finished (every audit log read through once each)",
            m.audit_reverify_rounds.clone(),
        );
        registry.register(
            "audit_reverify_round_seconds",
            "How long the last round of the background re-verify took (at most [audit] reverify_period_s when the byte budget allows)",
            m.audit_reverify_round_seconds.clone(),
        );
        registry.register(
            "deliveries",
            "Notifications in the outbox, by state (pending, delivered, dead)",
            m.deliveries.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Notification delivery attempts, by outcome (delivered, failed)",
            m.delivery_attempts.clone(),
        );
        registry.register(
            "search_documents",
            "Documents in the search index (as of the last query)",
            m.search_documents.clone(),
        );
        registry.register(
            "search_segments",
            "Segments of the search index (as of the last query)",
            m.search_segments.clone(),
        );
        registry.register(
            "search_ceiling_stops",
            "Segment rankings stopped at the words' best scores there (a count since the index was opened, as of the last query)",
            m.search_ceiling_stops.clone(),
        );
        registry.register(
            "search_duration_seconds",
            "Time to answer a search query",
            m.search_seconds.clone(),
        );
        registry.register(
            "search_wait_seconds",
            "Time a search query waited for its turn (queries run one per core at once)",
            m.search_wait_seconds.clone(),
        );
        registry.register(
            "search_index_lost",
            "Times the search index was found removed from under the daemon (each is rebuilt; /healthz says degraded until then)",
            m.search_index_lost.clone(),
        );
        registry.register(
            "search_catalogued",
            "Files and records the search indexer catalogued (each a stat) to find what changed: a file change costs its own path, an event or the periodic reconcile its whole workspace",
            m.search_catalogued.clone(),
        );
        registry.register(
            "search_unlisted_folders",
            "Folders of the workspaces the search indexer cannot list now (unreadable, failing): their documents are kept as last indexed and the folders tried again every 5 s",
            m.search_unlisted_folders.clone(),
        );
        registry.register(
            "policy_errors",
            "Route policy evaluations (auto_approve_if) that failed or gave no true or false: each decided nothing and left its handoff to people",
            m.policy_errors.clone(),
        );
        registry.register(
            "review_seconds",
            "Seconds from a reviewer's first view of a handoff revision (page or API detail) to their decision of it, by route",
            m.review_seconds.clone(),
        );
        registry.register(
            "approvals_unopened",
            "Approvals given while an artifact the revision changed was never opened by the approver, by route",
            m.approvals_unopened.clone(),
        );
        registry.register(
            "approvals_held",
            "Approvals refused by a route's min_review_s or require_open_changed (the approver had not opened what changed, or not long enough), by route",
            m.approvals_held.clone(),
        );
        registry.register(
            "digests",
            "Reviewers' digest mails made: one per reviewer and cadence with something new waiting on routes with digest = true",
            m.digests.clone(),
        );
        registry.register(
            "digest_items",
            "Handoffs listed per digest mail",
            m.digest_items.clone(),
        );
        registry.register(
            "grants",
            "Reviewers' scoped grants (approve similar), by what happened: created, revoked, approved (a handoff approved at receipt by one), refused (asked for, not made)",
            m.grants.clone(),
        );
        registry.register(
            "canaries_filed",
            "Canaries (known-bad example handoffs) filed into reviewers' queues",
            m.canaries_filed.clone(),
        );
        registry.register(
            "canaries_caught",
            "Canaries a reviewer rejected or sent back (caught), by reviewer",
            m.canaries_caught.clone(),
        );
        registry.register(
            "canaries_missed",
            "Canaries a reviewer approved (missed), by reviewer",
            m.canaries_missed.clone(),
        );
        Metrics { registry, ..m }
    }
}

/// 0.25 ms to ~46 s, each bucket sqrt(2) wider than the last: fine enough to read a p99 of a
/// few milliseconds from, wide enough for a disk that stalls for seconds.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_25, std::f64::consts::SQRT_2, 36)
}

/// The daemon's fsyncs, read at each scrape from the counters kept where they are made (store,
/// audit log and workspace writes hold no `Metrics`).
#[derive(Debug)]
struct Syncs;

impl Collector for Syncs {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals = crate::workspace::fsync::totals();
        let help = "fsync and fdatasync calls, by what they make durable";
        let mut family = encoder.encode_descriptor("syncs", help, None, MetricType::Counter)?;
        for (kind, count, _) in &totals {
            let label = KindLabel {
                kind: kind.as_str().into(),
            };
            ConstCounter::new(*count).encode(family.encode_family(&label)?)?;
        }
        let help = "Time spent in fsync and fdatasync calls, by what they make durable";
        let mut family =
            encoder.encode_descriptor("sync_seconds", help, None, MetricType::Counter)?;
        for (kind, _, seconds) in &totals {
            let label = KindLabel {
                kind: kind.as_str().into(),
            };
            ConstCounter::new(*seconds).encode(family.encode_family(&label)?)?;
        }
        let (groups, requests, failed) = crate::workspace::fsync::group_totals();
        for (name, help, value) in [
            (
                "store_group_commits",
                "Group commits of the store: syncs shared by the changes that arrived together",
                groups,
            ),
            (
                "store_group_requests",
                "Steps of store changes made durable by group commits (per group: how much was shared)",
                requests,
            ),
            (
                "store_group_syncfs_failures",
                "Group commits whose syncfs failed (each synced again file by file, and syncfs no longer used on that filesystem)",
                failed,
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

/// The pollers' rounds, stats and listings (network mounts, `poll_ms`), read at each scrape
/// from the counters the pollers keep: a round should cost a few stats per workspace.
#[derive(Debug)]
struct Polls;

impl Collector for Polls {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = crate::watch::poll_totals();
        for (name, help, value) in [
            (
                "poll_rounds",
                "Polling rounds made (network mounts, poll_ms)",
                t.rounds,
            ),
            (
                "poll_stats",
                "Stats made by the pollers (folders and named files)",
                t.stats,
            ),
            (
                "poll_listings",
                "Folders listed by the pollers (their stamp moved)",
                t.listings,
            ),
        ] {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

impl Metrics {
    pub fn recovered(&self, kind: &str) {
        self.recoveries
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
