//! Reviewers' away marks, assigning routes' rounds and "seen" marks as rows (see
//! `crate::store::people`): every node reads them at each use, so all act on the same.

use super::{io_error, off_runtime, Cluster};
use crate::store::people::{Claims, Glimpse, People};
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct PeopleRows {
    cluster: Arc<Cluster>,
}

impl PeopleRows {
    pub(super) fn new(cluster: Arc<Cluster>) -> PeopleRows {
        PeopleRows { cluster }
    }

    fn client(&self) -> io::Result<r2d2::PooledConnection<super::Manager>> {
        self.cluster.client().map_err(io_error)
    }
}

impl People for PeopleRows {
    fn away_since(&self, name: &str) -> io::Result<Option<String>> {
        off_runtime(|| {
            let row = self
                .client()?
                .query_opt("SELECT since FROM away WHERE name = $1", &[&name])
                .map_err(io_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_away(&self, name: &str, since: Option<&str>) -> io::Result<()> {
        off_runtime(|| {
            let mut client = self.client()?;
            let mut tx = client.transaction().map_err(io_error)?;
            match since {
                // A mark already there keeps its time: going away twice is still the first time.
                Some(since) => {
                    tx.execute(
                        "INSERT INTO away (name, since) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                        &[&name, &since],
                    )
                    .map_err(io_error)?;
                    // Wakes the other nodes (at commit), to move on what they assigned to
                    // `name` at once; they catch up at their next lease round if it is lost.
                    tx.execute("SELECT pg_notify($1, $2)", &[&super::wake::AWAY, &name])
                        .map_err(io_error)?;
                }
                None => {
                    tx.execute("DELETE FROM away WHERE name = $1", &[&name])
                        .map_err(io_error)?;
                }
            }
            tx.commit().map_err(io_error)
        })
    }

    fn last_assigned(&self, route: &str) -> io::Result<Option<String>> {
        off_runtime(|| {
            let row = self
                .client()?
                .query_opt("SELECT last FROM rota WHERE route = $1", &[&route])
                .map_err(io_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn set_last_assigned(&self, route: &str, name: &str) -> io::Result<()> {
        off_runtime(|| {
            self.client()?
                .execute(
                    "INSERT INTO rota (route, last) VALUES ($1, $2)
                     ON CONFLICT (route) DO UPDATE SET last = $2",
                    &[&route, &name],
                )
                .map_err(io_error)?;
            Ok(())
        })
    }

    fn seen(&self, name: &str, keys: &[&str]) -> io::Result<HashMap<String, Glimpse>> {
        off_runtime(|| {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let rows = self
                .client()?
                .query(
                    "SELECT key, revision, approvals FROM seen WHERE name = $1 AND key = ANY($2)",
                    &[&name, &keys],
                )
                .map_err(io_error)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let revision: i32 = r.get(1);
                    let approvals: i32 = r.get(2);
                    (r.get(0), (revision as u32, approvals as usize))
                })
                .collect())
        })
    }

    fn look(&self, name: &str, key: &str, (revision, approvals): Glimpse) -> io::Result<()> {
        off_runtime(|| {
            self.client()?
                .execute(
                    "INSERT INTO seen (name, key, revision, approvals) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name, key) DO UPDATE SET revision = $3, approvals = $4, at = now()",
                    &[&name, &key, &(revision as i32), &(approvals as i32)],
                )
                .map_err(io_error)?;
            Ok(())
        })
    }

    fn claims_elsewhere(&self) -> io::Result<HashMap<String, Claims>> {
        off_runtime(|| {
            let cluster = &self.cluster;
            // A claim holds while it is not released and its handoff has no decision.
            let rows = self
                .client()?
                .query(
                    "SELECT j ->> 'by', count(*),
                            count(*) FILTER (WHERE jsonb_typeof(j -> 'assigned') = 'object')
                     FROM (SELECT convert_from(c.bytes, 'UTF8')::jsonb AS j FROM records c
                           WHERE c.name = 'claim.json'
                             AND NOT EXISTS (SELECT 1 FROM records d WHERE d.tag = c.tag
                                             AND d.dir = c.dir AND d.name = 'decision.json')
                             AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.tag = c.tag
                                             AND l.node = $1 AND l.instance = $2)) claims
                     WHERE j ->> 'released_at' IS NULL AND j ->> 'by' IS NOT NULL
                     GROUP BY 1",
                    &[&cluster.node, &cluster.instance],
                )
                .map_err(io_error)?;
            Ok(rows
                .iter()
                .map(|r| {
                    let claims: i64 = r.get(1);
                    let assigned: i64 = r.get(2);
                    let claims = Claims {
                        claims: claims as usize,
                        assigned: assigned as usize,
                    };
                    (r.get(0), claims)
                })
                .collect())
        })
    }
}
