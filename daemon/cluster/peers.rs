//! The other nodes, for a node that answers about every workspace: which node serves a
//! handoff or a workspace now (the holder of its unexpired lease), and the live nodes
//! to ask when a list or a search covers them all. The answers are read from the database at
//! each call: a lease moves within seconds, and a stale guess would send a request to a node
//! that no longer serves the workspace.

use super::{Cluster, ClusterError};
use crate::config::Config;

/// Another live node and where it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub node: String,
    pub url: String,
    /// The run of the node (new at each start): a signed request names it, and the node
    /// refuses one meant for an earlier or later run of itself.
    pub instance: String,
    /// For a request about one workspace: the lease the node holds it by (tag, epoch), which
    /// the signed request names too.
    pub lease: Option<(String, i64)>,
}

/// Where a request about one handoff or workspace should be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// This node serves it.
    Here,
    /// Another live node serves it.
    Peer(Peer),
    /// It was served, but no live node holds its lease now (its node died or was paused;
    /// another takes it over within 2 x TTL).
    Unserved,
    /// Nothing by that name was ever served.
    Nobody,
}

/// The holder of an unexpired lease, on the run (instance) that holds it. The lease is the
/// truth: a node renews its leases and its node row in separate statements, so its row may
/// look a moment older than the leases it keeps.
const HOLDER: &str = concat!(
    "SELECT n.node, n.peer_url, n.instance, l.tag, l.epoch FROM leases l JOIN nodes n
    ON n.node = l.node AND n.instance = l.instance
    WHERE l.tag = ANY($1) AND l.expires_at > ",
    now!(),
    "
    LIMIT 1"
);

impl Cluster {
    /// The URL the other nodes reach this one at (`[cluster] peer_url`, or from `listen`).
    pub fn peer_url(&self, config: &Config) -> String {
        config
            .cluster
            .as_ref()
            .map(|c| c.peer_url(config.listen))
            .unwrap_or_default()
    }

    /// Who serves the handoff `key`.
    pub fn holder_of_key(&self, key: &str) -> Result<Holder, ClusterError> {
        let mut client = self.client()?;
        let dir = crate::workspace::key_dir_name(key);
        let tags: Vec<String> = client
            .query("SELECT DISTINCT tag FROM records WHERE dir = $1", &[&dir])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.holder_of_tags(&mut client, &tags)
    }

    /// Who serves the workspace named `name`.
    pub fn holder_of_workspace(&self, name: &str) -> Result<Holder, ClusterError> {
        let mut client = self.client()?;
        let tags: Vec<String> = client
            .query("SELECT tag FROM workspaces WHERE name = $1", &[&name])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        self.holder_of_tags(&mut client, &tags)
    }

    fn holder_of_tags(
        &self,
        client: &mut super::conn::Conn,
        tags: &[String],
    ) -> Result<Holder, ClusterError> {
        if tags.is_empty() {
            return Ok(Holder::Nobody);
        }
        let Some(row) = client.query_opt(HOLDER, &[&tags])? else {
            return Ok(Holder::Unserved);
        };
        let node: String = row.get(0);
        if node == self.node {
            return Ok(Holder::Here);
        }
        Ok(Holder::Peer(Peer {
            node,
            url: row.get(1),
            instance: row.get(2),
            lease: Some((row.get(3), row.get(4))),
        }))
    }

    /// The other live nodes that can be reached.
    pub fn peers(&self) -> Result<Vec<Peer>, ClusterError> {
        let mut client = self.client()?;
        let rows = client.query(
            concat!(
                "SELECT node, peer_url, instance FROM nodes
             WHERE seen_at > ",
                now!(),
                " - make_interval(secs => $1) AND node <> $2 AND peer_url <> ''
             ORDER BY node"
            ),
            &[&self.ttl.as_secs_f64(), &self.node],
        )?;
        Ok(rows
            .iter()
            .map(|r| Peer {
                node: r.get(0),
                url: r.get(1),
                instance: r.get(2),
                lease: None,
            })
            .collect())
    }

    /// When the handoff `key` was first received, from its record (`meta.json`; the position of a list
    /// page's cursor that another node serves).
    pub fn received_at(&self, key: &str) -> Result<Option<String>, ClusterError> {
        let mut client = self.client()?;
        let dir = crate::workspace::key_dir_name(key);
        let row = client.query_opt(
            "SELECT convert_from(bytes, 'UTF8')::jsonb ->> 'received_at' FROM records
             WHERE dir = $1 AND name = $2 LIMIT 1",
            &[&dir, &"meta.json"],
        )?;
        Ok(row.and_then(|r| r.get(0)))
    }
}
