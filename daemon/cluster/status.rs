//! What `baton cluster status` and `/healthz` tell of the cluster: the nodes, how many
//! workspaces each serves, and the leases nobody holds.

use super::{Cluster, ClusterError};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Status {
    pub schema_version: u32,
    pub ttl_s: u64,
    pub nodes: Vec<Node>,
    /// Workspaces ever served.
    pub workspaces: i64,
    /// Leases expired and not yet taken over.
    pub expired_leases: i64,
}

#[derive(Debug, Serialize)]
pub struct Node {
    pub node: String,
    pub public_url: String,
    pub started_at: String,
    /// Seconds since it last renewed its leases.
    pub seen_s_ago: f64,
    /// Renewed within the lease TTL.
    pub live: bool,
    /// Workspaces it holds a current lease on.
    pub leases: i64,
}

impl Cluster {
    pub fn status(&self) -> Result<Status, ClusterError> {
        let mut client = self.client()?;
        let ttl = self.ttl.as_secs_f64();
        let nodes = client
            .query(
                concat!("SELECT n.node, n.public_url, to_char(n.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
                        extract(epoch FROM ", now!(), " - n.seen_at)::float8,
                        (SELECT count(*) FROM leases l WHERE l.node = n.node AND l.expires_at > ", now!(), ")
                 FROM nodes n ORDER BY n.node"),
                &[],
            )?
            .iter()
            .map(|r| {
                let seen: f64 = r.get(3);
                Node {
                    node: r.get(0),
                    public_url: r.get(1),
                    started_at: r.get(2),
                    seen_s_ago: (seen * 10.0).round() / 10.0,
                    live: seen < ttl,
                    leases: r.get(4),
                }
            })
            .collect();
        let workspaces: i64 = client
            .query_one("SELECT count(*) FROM workspaces", &[])?
            .get(0);
        let expired_leases: i64 = client
            .query_one(
                concat!("SELECT count(*) FROM leases WHERE expires_at <= ", now!()),
                &[],
            )?
            .get(0);
        Ok(Status {
            schema_version: super::schema::known_version(),
            ttl_s: self.ttl.as_secs(),
            nodes,
            workspaces,
            expired_leases,
        })
    }
}
