//! `[cluster]`: several daemons over one workspaces share, with PostgreSQL as the system of
//! record (see `crate::cluster`). Absent: one daemon, records in data_dir.

use serde::Deserialize;

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `postgres://user:password@host:port/database` (or libpq's `key=value` form).
    pub database_url: String,
    /// This daemon's name among the nodes; the host name when not given. Unique per daemon.
    #[serde(default)]
    pub node: Option<String>,
    /// How long a workspace's lease lasts unless renewed, in seconds (renewed every third).
    #[serde(default = "default_lease_ttl_s")]
    pub lease_ttl_s: u64,
    /// Where the other nodes reach this one (`http://host:port`), to forward a request about a
    /// workspace this node serves; from `listen` (the host name for an unspecified address)
    /// when not given. Plain HTTP only: what nodes send each other, answers' bodies included,
    /// is signed (see `baton_web::peers::trust`), not encrypted.
    #[serde(default)]
    pub peer_url: Option<String>,
}

fn default_lease_ttl_s() -> u64 {
    15
}

impl Cluster {
    /// The node name, the host name when none is configured.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(crate::host::hostname)
    }

    /// The URL the other nodes reach this one at.
    pub fn peer_url(&self, listen: std::net::SocketAddr) -> String {
        if let Some(url) = &self.peer_url {
            return url.trim_end_matches('/').to_string();
        }
        let host = match listen.ip() {
            ip if ip.is_unspecified() => crate::host::hostname(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        format!("http://{host}:{}", listen.port())
    }

    pub(super) fn check(&self) -> Result<(), String> {
        let url = self.database_url.trim();
        if url.is_empty() || url.parse::<postgres::Config>().is_err() {
            return Err("cluster.database_url: not a PostgreSQL connection string (postgres://user@host:5432/baton)".into());
        }
        if !(2..=3600).contains(&self.lease_ttl_s) {
            return Err("cluster.lease_ttl_s must be 2 to 3600".into());
        }
        if self
            .node
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.len() > 128 || n.chars().any(char::is_control))
        {
            return Err("cluster.node: 1 to 128 printable characters".into());
        }
        if let Some(url) = &self.peer_url {
            let ok = url::Url::parse(url).is_ok_and(|u| u.scheme() == "http" && u.host().is_some());
            if !ok {
                return Err(format!(
                    "cluster.peer_url: {url:?} is not an http://host:port URL (nodes reach each other over plain HTTP and sign what they send, bodies included; https:// is not supported: keep the network between nodes private)"
                ));
            }
        }
        Ok(())
    }
}

/// The URL's password never reaches a log.
impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("database_url", &redacted(&self.database_url))
            .field("node", &self.node)
            .field("lease_ttl_s", &self.lease_ttl_s)
            .field("peer_url", &self.peer_url)
            .finish()
    }
}

/// The connection string without its password, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "(a libpq connection string)".into(),
    }
}
