//! Prometheus metrics: what an operator graphs and alerts on.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
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

pub struct Metrics {
    registry: Registry,
    /// Handoffs closed, by outcome.
    pub handoffs: Family<OutcomeLabel, Counter>,
    pub received: Counter,
    pub pending: Gauge,
    /// File change seen (or file mtime at start-up) -> handoff processed.
    pub ingest_seconds: Histogram,
    pub rescans: Counter,
    pub watches: Gauge,
    pub errors: Family<KindLabel, Counter>,
    pub events: Family<TypeLabel, Counter>,
    pub scan_entries: Gauge,
    pub scan_seconds: Gauge<f64, AtomicU64>,
    pub workspaces: Gauge,
    /// Tampering found and not yet acknowledged with `baton audit ack`.
    pub tamper_alerts: Gauge,
    /// Notifications in the outbox, by state (pending, delivered, dead).
    pub deliveries: Family<StateLabel, Gauge>,
    /// Delivery attempts, by outcome (delivered, failed).
    pub delivery_attempts: Family<OutcomeLabel, Counter>,
    /// Searchable documents and index segments, as of the last query.
    pub search_documents: Gauge,
    pub search_segments: Gauge,
    pub search_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton");
        let m = Metrics {
            handoffs: Family::default(),
            received: Counter::default(),
            pending: Gauge::default(),
            ingest_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            rescans: Counter::default(),
            watches: Gauge::default(),
            errors: Family::default(),
            events: Family::default(),
            scan_entries: Gauge::default(),
            scan_seconds: Gauge::default(),
            workspaces: Gauge::default(),
            tamper_alerts: Gauge::default(),
            deliveries: Family::default(),
            delivery_attempts: Family::default(),
            search_documents: Gauge::default(),
            search_segments: Gauge::default(),
            search_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register(
            "handoffs_decided",
            "Handoffs closed, by outcome",
            m.handoffs.clone(),
        );
        registry.register(
            "handoffs_received",
            "Handoffs received (new keys)",
            m.received.clone(),
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
            "rescans",
            "Workspace rescans (overflow, watcher error, periodic)",
            m.rescans.clone(),
        );
        registry.register("watches", "Folders under watch", m.watches.clone());
        registry.register("errors", "Errors, by kind", m.errors.clone());
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
            "tamper_alerts",
            "Tampering found in workspaces and not yet acknowledged (baton audit ack)",
            m.tamper_alerts.clone(),
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
            "search_duration_seconds",
            "Time to answer a search query",
            m.search_seconds.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
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
