//! `[cluster]`: several daemons over one workspaces share, with PostgreSQL as the system of
//! record (see `crate::cluster`). Absent: one daemon, records in data_dir.

use serde::Deserialize;
use std::path::PathBuf;

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
    /// Where the other nodes reach this one (`http://host:port`, or `https://` for a TLS proxy
    /// in front of it), to forward a request about a workspace this node serves; from `listen`
    /// (the host name for an unspecified address) when not given. What nodes send each other
    /// is signed either way (see `baton_web::peers::trust`); over `https://` it is private too.
    #[serde(default)]
    pub peer_url: Option<String>,
    /// PEM certificates that alone vouch for `https://` nodes (a private CA), relative to the
    /// configuration's folder; the public roots when not given.
    #[serde(default)]
    pub peer_ca_file: Option<PathBuf>,
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
            let ok = url::Url::parse(url).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https") && u.host().is_some() && u.path() == "/"
            });
            if !ok {
                return Err(format!(
                    "cluster.peer_url: {url:?} is not an http://host:port or https://host:port URL (https:// for a TLS proxy in front of this node)"
                ));
            }
        }
        Ok(())
    }

    /// `peer_ca_file` made relative to the configuration's folder, and checked: a file that
    /// cannot be read, or holds no certificate, stops the start (rather than every
    /// `https://` node refused later).
    pub(super) fn resolve(mut self, base: &std::path::Path) -> Result<Cluster, String> {
        self.peer_ca_file = self.peer_ca_file.map(|p| base.join(p));
        if let Some(file) = &self.peer_ca_file {
            let fail = |why: String| format!("cluster.peer_ca_file: {}: {why}", file.display());
            if peer_certificates(file).map_err(fail)? == 0 {
                let why = "it holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
                return Err(fail(why.into()));
            }
        }
        Ok(self)
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
            .field("peer_ca_file", &self.peer_ca_file)
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

/// How many certificates a PEM file holds; why not when it cannot be read or parsed.
fn peer_certificates(file: &std::path::Path) -> Result<usize, String> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(file)
        .map_err(|e| e.to_string())?
        .try_fold(0, |n, cert| match cert {
            Ok(_) => Ok(n + 1),
            Err(e) => Err(format!("not PEM certificates: {e}")),
        })
}
