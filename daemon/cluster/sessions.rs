//! Sign-in sessions and the admin secrets as rows, shared by the nodes: a person signed in on one node is signed in
//! on all, and a sign-out on one ends the session everywhere at once. The rows hold the id's
//! sha256, never the id.

use super::{io_error, Cluster};
use crate::login::{Session, SharedSessions};
use std::io;
use std::sync::Arc;

pub(super) struct SessionRows {
    cluster: Arc<Cluster>,
}

impl SessionRows {
    pub(super) fn new(cluster: Arc<Cluster>) -> SessionRows {
        SessionRows { cluster }
    }
}

impl SharedSessions for SessionRows {
    fn put(&self, id_sha256: &str, session: &Session, expires_at: u64) -> io::Result<()> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let json = serde_json::to_string(session).map_err(io_error)?;
        client
            .execute(
                "INSERT INTO sessions (id_sha256, session, expires_at)
                 VALUES ($1, $2::text::jsonb, to_timestamp($3))
                 ON CONFLICT (id_sha256)
                 DO UPDATE SET session = $2::text::jsonb, expires_at = to_timestamp($3)",
                &[&id_sha256, &json, &(expires_at as f64)],
            )
            .map_err(io_error)?;
        Ok(())
    }

    fn get(&self, id_sha256: &str) -> io::Result<Option<Session>> {
        let mut client = self.cluster.client().map_err(io_error)?;
        let row = client
            .query_opt(
                concat!(
                    "SELECT session::text FROM sessions WHERE id_sha256 = $1 AND expires_at > ",
                    now!()
                ),
                &[&id_sha256],
            )
            .map_err(io_error)?;
        row.map(|r| serde_json::from_str(r.get(0)).map_err(io_error))
            .transpose()
    }

    fn end(&self, id_sha256: &str) -> io::Result<()> {
        let mut client = self.cluster.client().map_err(io_error)?;
        client
            .execute("DELETE FROM sessions WHERE id_sha256 = $1", &[&id_sha256])
            .map_err(io_error)?;
        Ok(())
    }
}

impl Cluster {
    /// Where the nodes share their sign-in sessions.
    pub fn sessions(self: &Arc<Cluster>) -> Arc<dyn SharedSessions> {
        Arc::new(SessionRows::new(self.clone()))
    }

    /// Removes the sessions past their expiry (each node, now and then).
    pub fn sweep_sessions(&self) -> Result<u64, super::ClusterError> {
        let mut client = self.client()?;
        Ok(client.execute(
            concat!("DELETE FROM sessions WHERE expires_at <= ", now!()),
            &[],
        )?)
    }
}

/// Secrets the nodes share (the admin token's hash, the admin password's): the first node's
/// stands.
impl crate::auth::SharedSecrets for Cluster {
    fn adopt(&self, name: &str, ours: &str) -> io::Result<String> {
        let mut client = self.client().map_err(io_error)?;
        client
            .execute(
                "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &ours],
            )
            .map_err(io_error)?;
        let row = client
            .query_one("SELECT value FROM secrets WHERE name = $1", &[&name])
            .map_err(io_error)?;
        Ok(row.get(0))
    }
}
