//! Several daemons (nodes) over one workspaces share, with PostgreSQL as the system of record.
//!
//! The shared folder keeps content only (what agents write, and what the daemon publishes
//! for them); the records (revisions, decisions, approvals, claims, ownership), the audit
//! anchors and the leases live in the database. Each workspace is served by one node at a
//! time, the holder of its lease (`lease`); every write for it is made under the lease's
//! epoch and refused once the epoch is stale (`records`, `anchors`), so a node that was
//! paused past its lease can never write over its successor. The schema's migrations are in
//! `migrations/` and run at start (`schema`).

#[macro_use]
mod clock;
mod anchors;
mod conn;
mod deliveries;
mod documents;
mod fence;
pub mod lease;
mod marks;
mod name;
pub mod peers;
mod people;
mod records;
mod schema;
mod seals;
mod sessions;
pub mod status;
pub mod trust;
pub mod wake;
mod written;

pub use lease::Leases;
pub use peers::{Holder, Peer};

use crate::config;
use std::sync::Arc;
use std::time::Duration;

pub type Pool = r2d2::Pool<Manager>;
type Manager = conn::Manager;

/// What can go wrong reaching the cluster's database.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the cluster's database at {url}: {error}; check [cluster] database_url and that PostgreSQL runs")]
    Connect { url: String, error: String },
    #[error("{0}")]
    Schema(String),
    #[error("this node cannot start: {0}")]
    NameInUse(String),
    #[error("this process no longer holds its cluster node name: {0}")]
    NameLost(String),
    #[error("the cluster's database: {0}")]
    Db(#[from] postgres::Error),
    #[error("the cluster's database: {0}")]
    Pool(#[from] r2d2::Error),
}

/// This node's handle on the cluster: the database, its name, and the leases it holds.
#[derive(Debug)]
pub struct Cluster {
    pool: Pool,
    pub node: String,
    /// New at each start: the leases of an earlier run of this node are not this run's.
    pub instance: String,
    pub ttl: Duration,
    pub leases: Leases,
    /// The cluster's key, which signs what the nodes send each other (`trust`).
    pub trust: Arc<trust::Trust>,
    /// Where to connect outside the pool (the wake-up listener, `wake`).
    pg_config: postgres::Config,
    /// The record folders as this node's last changes left them (`written`).
    written: written::Written,
    /// The damage found in the workspaces' rows (`seals`).
    seals: seals::Found,
    /// The outbox's marks moved and not yet written (`marks`).
    marks: marks::Unwritten,
}

impl Cluster {
    /// Connects and brings the schema up to date; refuses a schema newer than this binary.
    pub fn connect(config: &config::Cluster) -> Result<Arc<Cluster>, ClusterError> {
        let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (pool, pg_config) = pool(config, made.clone())?;
        schema::migrate(&pool)?;
        let trust = Arc::new(trust::Trust::load(&pool)?);
        let node = config.node_name();
        let instance = hex::encode(rand::random::<[u8; 8]>());
        let ttl = Duration::from_secs(config.lease_ttl_s);
        Ok(Arc::new(Cluster {
            leases: Leases::new(
                pool.clone(),
                node.clone(),
                instance.clone(),
                ttl,
                trust.clone(),
                &pg_config,
            ),
            pool,
            node,
            instance,
            ttl,
            trust,
            pg_config,
            written: written::Written::new(made),
            seals: seals::Found::default(),
            marks: marks::Unwritten::default(),
        }))
    }

    /// The store of every workspace, in the database, fenced by this node's leases.
    pub fn records(self: &Arc<Cluster>) -> crate::store::Records {
        Arc::new(records::Rows::new(self.clone()))
    }

    /// Where the audit anchors are kept, fenced the same way.
    pub fn anchors(self: &Arc<Cluster>) -> Arc<dyn crate::audit::RemoteAnchors> {
        Arc::new(anchors::AnchorRows::new(self.clone()))
    }

    /// Where reviewers' away marks, routes' rounds and "seen" marks are kept.
    pub fn people(self: &Arc<Cluster>) -> Arc<dyn crate::store::people::People> {
        Arc::new(people::PeopleRows::new(self.clone()))
    }

    /// Where documents every node must read alike (grants, digest cadences) are kept.
    pub fn documents(self: &Arc<Cluster>) -> Arc<dyn crate::documents::Documents> {
        Arc::new(documents::DocumentRows::new(self.clone()))
    }

    /// Where this node's outbox keeps its deliveries.
    pub fn deliveries(self: &Arc<Cluster>) -> Box<dyn crate::outbox::Keep> {
        Box::new(deliveries::DeliveryRows::new(self.clone()))
    }

    fn client(&self) -> Result<r2d2::PooledConnection<Manager>, ClusterError> {
        clock::checkout(&self.pool)
    }
}

/// The records of a configuration: the cluster's database when `[cluster]` is set, data_dir
/// otherwise. For commands that read records without serving (export, replay, evidence).
pub fn records_of(config: &config::Config) -> anyhow::Result<crate::store::Records> {
    Ok(match &config.cluster {
        Some(c) => Cluster::connect(c)?.records(),
        None => crate::store::in_data_dir(&config.data_dir),
    })
}

fn pool(
    config: &config::Cluster,
    made: Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Pool, postgres::Config), ClusterError> {
    let url = config::cluster::redacted(&config.database_url);
    let mut pg: postgres::Config =
        config
            .database_url
            .parse()
            .map_err(|e: postgres::Error| ClusterError::Connect {
                url: url.clone(),
                error: e.to_string(),
            })?;
    stall_limits(&mut pg, Duration::from_secs(config.lease_ttl_s));
    let manager = conn::Manager::new(pg.clone(), made);
    let pool = r2d2::Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(5))
        .build(manager)
        .map_err(|e| ClusterError::Connect {
            url,
            error: e.to_string(),
        })?;
    Ok((pool, pg))
}

/// Bounds what a stalled node can hold in the database. A node paused (SIGSTOP, a frozen VM)
/// in the middle of a fenced write keeps its transaction open, and with it the `FOR SHARE`
/// lock on the workspace's lease row: the successor's takeover (an `UPDATE` of that row) then
/// waited for as long as the pause lasted, holding up its renewals of every other lease.
/// The node's own transactions never wait on it between statements, so one idle in a
/// transaction longer than this is stalled: PostgreSQL ends its session (the write is rolled
/// back, as refused), and a statement waits at most as long for a row lock.
///
/// A server gone without closing the connection (its host down, a partition) is given up
/// after as long: data unacknowledged that long ends the connection (`tcp_user_timeout`), and
/// an idle one is probed (keepalives). Without them a statement on it waited for the kernel's
/// retransmissions, some 15 minutes, holding whatever it held (a lease renewal's lock).
fn stall_limits(pg: &mut postgres::Config, ttl: Duration) {
    let limit = (ttl / 3).clamp(Duration::from_secs(1), Duration::from_secs(5));
    pg.tcp_user_timeout(limit)
        .keepalives(true)
        .keepalives_idle(limit)
        .keepalives_interval((limit / 3).max(Duration::from_secs(1)))
        .keepalives_retries(3);
    let ms = limit.as_millis();
    let options = format!(
        "{} -c idle_in_transaction_session_timeout={ms} -c lock_timeout={ms}",
        pg.get_options().unwrap_or_default()
    );
    pg.options(options.trim());
}

/// A database failure as the store's error: the transition it was part of did not happen.
fn io_error(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("the cluster's database: {e}"))
}

/// Runs `f` (a query with the blocking client) off the async workers when called on one (the
/// queue page reads "seen" marks while it renders): the client cannot block inside a runtime.
pub(super) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(out) => out,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}
