//! One process per node name. The rows of a node (its deliveries, its leases' holder, its
//! heartbeat) are keyed by its name, so two daemons started under one name (on two data_dirs,
//! or two hosts) would each take the other's deliveries and leases for their own and send or
//! write twice. The serving process holds a PostgreSQL session-level advisory lock keyed by
//! its name, on a connection of its own, for as long as it runs: a second process under the
//! name is refused at its start. The session ends with the process (a kill -9 too: the kernel
//! closes the socket), and with a host gone the server drops it within seconds (the session's
//! keepalives and `tcp_user_timeout`, set below), so the name is free for the node's restart.
//!
//! The lock connection is looked at by each heartbeat. If it is lost (a database restart), the
//! name is taken again on a new one; if another process took it meanwhile, this one has lost
//! its name for good: its heartbeats, renewals and writes all fail from then on, so it serves
//! nothing (and says so at each round) until it is stopped.

use super::ClusterError;
use postgres::{Client, NoTls};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How many times the name is asked for before it is found another process's (250 ms apart).
const TRIES: usize = 8;

/// The lock on this process's node name.
#[derive(Debug)]
pub(super) struct NameLock {
    node: String,
    key: i64,
    config: postgres::Config,
    /// How soon the server gives up on the lock's connection once this host is gone.
    limit: Duration,
    state: Mutex<State>,
    /// Whether this process has held its name: a refusal after that is a loss, not a start
    /// refused.
    held_once: AtomicBool,
}

enum State {
    /// Not taken yet (before the first heartbeat), or its connection was lost.
    Free,
    Held(Box<Client>),
    /// Another process holds the name now: this one may do nothing more.
    Lost(String),
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Free => "Free",
            State::Held(_) => "Held",
            State::Lost(_) => "Lost",
        })
    }
}

/// The advisory lock's key for node `node`: a hash, so any name maps to one bigint (64 bits:
/// two names meeting by chance is not a concern), with a prefix of its own so it meets no other
/// lock of baton's (the migrations' is a small constant).
fn key(node: &str) -> i64 {
    let digest = Sha256::digest(format!("baton cluster node name\0{node}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

impl NameLock {
    pub(super) fn new(config: &postgres::Config, node: &str, ttl: Duration) -> NameLock {
        let mut config = config.clone();
        config.connect_timeout(Duration::from_secs(5));
        // The server's side of the lock's connection: with this node's host gone, the server
        // ends the session (and frees the name) within seconds, not the system's two hours.
        let limit = (ttl / 3).clamp(Duration::from_secs(1), Duration::from_secs(5));
        NameLock {
            node: node.to_string(),
            key: key(node),
            config,
            limit,
            state: Mutex::new(State::Free),
            held_once: AtomicBool::new(false),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this process has lost its name to another (then it may write nothing).
    pub(super) fn lost(&self) -> bool {
        matches!(*self.state(), State::Lost(_))
    }

    /// `Err` once this process has lost its name (see `lost`).
    pub(super) fn refuse_if_lost(&self) -> Result<(), ClusterError> {
        match &*self.state() {
            State::Lost(why) => Err(ClusterError::NameLost(why.clone())),
            _ => Ok(()),
        }
    }

    /// Makes sure this process holds its name: takes it at the first call (refused, with who
    /// holds it, when another process does), checks the lock's connection at the next ones
    /// and takes the name again on a new one if it was lost.
    pub(super) fn hold(&self) -> Result<(), ClusterError> {
        let mut state = self.state();
        match &mut *state {
            State::Lost(why) => return Err(ClusterError::NameLost(why.clone())),
            State::Held(client) => {
                if client.simple_query("").is_ok() {
                    return Ok(());
                }
                tracing::warn!(node = %self.node, "the connection holding this node's name in the cluster's database was lost; taking the name again");
                *state = State::Free;
            }
            State::Free => {}
        }
        let mut client = self.config.connect(NoTls)?;
        // Each on its own, ignored if refused: a server before PostgreSQL 12 has no
        // tcp_user_timeout, and a Unix socket has no TCP settings.
        let secs = self.limit.as_secs().max(1);
        for set in [
            format!("SET tcp_keepalives_idle = {secs}"),
            format!("SET tcp_keepalives_interval = {secs}"),
            "SET tcp_keepalives_count = 3".to_string(),
            format!("SET tcp_user_timeout = {}", self.limit.as_millis()),
        ] {
            if let Err(e) = client.batch_execute(&set) {
                tracing::debug!(error = %e, "{set}: refused by the cluster's database");
            }
        }
        // A process killed a moment ago may still have its session ending on the server:
        // asked again for a little while before the name is found another's.
        let mut took = false;
        for attempt in 0..TRIES {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250));
            }
            took = client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&self.key])?
                .get(0);
            if took {
                break;
            }
        }
        if took {
            self.held_once.store(true, Ordering::Release);
            *state = State::Held(Box::new(client));
            return Ok(());
        }
        let holder = holder(&mut client, &self.node);
        let why = format!(
            "another baton process runs as cluster node {:?} ({holder}); a node name is one \
             process's: give this one another [cluster] node, or stop that one first",
            self.node
        );
        if self.held_once.load(Ordering::Acquire) {
            tracing::error!(node = %self.node, "{why}: this process lost its name while its connection to the cluster's database was down, and serves nothing from now on; stop it");
            *state = State::Lost(why.clone());
            return Err(ClusterError::NameLost(why));
        }
        Err(ClusterError::NameInUse(why))
    }
}

/// What the database tells of the process holding node `node`'s name: its last heartbeat.
fn holder(client: &mut Client, node: &str) -> String {
    let row = client.query_opt(
        "SELECT public_url, peer_url, instance, seen_at::text FROM nodes WHERE node = $1",
        &[&node],
    );
    match row {
        Ok(Some(r)) => format!(
            "last seen at {} serving {} (peer URL {:?}, instance {})",
            r.get::<_, String>(3),
            r.get::<_, String>(0),
            r.get::<_, String>(1),
            r.get::<_, String>(2)
        ),
        _ => "it has not registered yet".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn each_name_has_its_own_key() {
        assert_eq!(key("a"), key("a"));
        assert_ne!(key("a"), key("b"));
        assert_ne!(key("a"), 7281);
    }
}
