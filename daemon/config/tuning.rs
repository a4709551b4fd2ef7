//! The sections that only tune the daemon, each complete with its defaults: `[search]`,
//! `[deliveries]`, `[http]`, `[sessions]`.

use serde::Deserialize;

/// Full-text search (`[search]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Search {
    /// Artifacts larger than this are not indexed (their names are not either).
    pub max_file_bytes: u64,
    /// Memory of the index writer, in MB (tantivy's budget; 15..=4096).
    pub writer_memory_mb: usize,
    /// Changes are committed (made searchable) this long after the first one, in ms.
    pub commit_ms: u64,
    /// A query stops searching further segments after this long, in ms (the answer then says
    /// `partial`).
    pub time_limit_ms: u64,
}

impl Default for Search {
    fn default() -> Search {
        Search {
            max_file_bytes: 10 * 1024 * 1024,
            writer_memory_mb: 50,
            commit_ms: 250,
            time_limit_ms: 500,
        }
    }
}

/// How notifications are retried (`[deliveries]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deliveries {
    /// Delay before each attempt, in seconds (the first is usually 0); one attempt per entry,
    /// then the delivery is dead. Each delay is varied by up to ±20 % so that endpoints
    /// coming back from an outage are not hit by every retry at once.
    pub retry_schedule_s: Vec<f64>,
    /// Delivered notifications are listed this long, then forgotten (dead ones stay).
    pub keep_delivered_s: u64,
    /// A2A push notifications may go to loopback, private and link-local addresses (their
    /// URLs are an agent's choice, so by default only public ones are reached).
    pub a2a_allow_private: bool,
}

impl Default for Deliveries {
    fn default() -> Deliveries {
        Deliveries {
            retry_schedule_s: vec![
                0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0,
            ],
            keep_delivered_s: 7 * 86400,
            a2a_allow_private: false,
        }
    }
}

/// Protections of the HTTP server against clients that hold connections (`[http]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Time to send a request's headers, counted from when the server waits for them (so
    /// it also closes keep-alive connections idle for that long).
    pub header_timeout_s: u64,
    /// At shutdown, how long in-flight requests get before their connections are dropped.
    pub shutdown_timeout_s: u64,
}

impl Default for Http {
    fn default() -> Http {
        Http {
            max_connections: 1024,
            header_timeout_s: 10,
            shutdown_timeout_s: 10,
        }
    }
}

/// Sign-in sessions of the pages (`[sessions]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// A session unused this long ends.
    pub idle_timeout_s: u64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout_s: u64,
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            idle_timeout_s: 2 * 3600,
            absolute_timeout_s: 12 * 3600,
        }
    }
}

/// The background re-verify of the audit logs (`[audit]`): every log's whole chain read again,
/// once at each start and then at least once a period, within a byte budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// Every log is read through again at least this often (when the budget allows).
    pub reverify_period_s: u64,
    /// The most the re-verify reads a second, on average (bytes).
    pub reverify_bytes_per_s: u64,
}

impl Default for Audit {
    fn default() -> Audit {
        Audit {
            reverify_period_s: 3600,
            reverify_bytes_per_s: 4 * 1024 * 1024,
        }
    }
}
