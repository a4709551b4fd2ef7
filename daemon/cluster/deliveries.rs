//! The outbox's rows: each node keeps its deliveries in the database instead of
//! `data_dir/outbox/`, and every renewal round adopts the pending deliveries of nodes not seen
//! within the lease TTL (`FOR UPDATE SKIP LOCKED`, so two live nodes never take the same one).
//! A delivery keeps its id, so a receiver drops the repeat if the dead node had sent it.
//!
//! A node that was not dead but paused (or cut off from the database, not from the mail
//! server) must then not send what it held: it sends a delivery only while its heartbeats
//! run unbroken since it last saw the delivery's row as its own (`Leases::beating`), and asks
//! the database again after a gap. So no node sends a delivery another has adopted, and the
//! deliveries a node makes cost no read of their own.

use super::Cluster;
use crate::outbox::{Delivery, Keep, Sendable, SpoolError};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

pub(super) struct DeliveryRows {
    cluster: Arc<Cluster>,
    mine: Mutex<Mine>,
}

/// The deliveries whose rows this node found its own during a run of heartbeats (and so its
/// own until the run ends), and those it found another node's.
#[derive(Default)]
struct Mine {
    run: u64,
    ids: HashSet<String>,
    lost: HashSet<String>,
}

impl DeliveryRows {
    pub(super) fn new(cluster: Arc<Cluster>) -> DeliveryRows {
        DeliveryRows {
            cluster,
            mine: Mutex::default(),
        }
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, Mine> {
        self.mine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes rows found this node's (`own`) and another's (`lost`) by a statement sent during
    /// run `run` (read before it was sent: a statement answered after a gap began may have
    /// seen the row before another node adopted it, and the run it began in has ended).
    fn note(&self, run: Option<u64>, own: &[String], lost: &[String]) {
        let mut mine = self.mine();
        mine.lost.extend(lost.iter().cloned());
        let Some(run) = run else { return };
        if mine.run != run {
            if mine.run > run {
                return;
            }
            mine.run = run;
            mine.ids.clear();
        }
        mine.ids.extend(own.iter().cloned());
    }
}

/// Keeps deliveries: $1 their ids, $3 states and $4 documents (JSON text), made by node $2 or
/// changed by it while it still has them; returns the ids kept (the others are another's).
const SAVE: &str = concat!(
    "INSERT INTO deliveries (id, node, state, doc)
     SELECT u.id, $2, u.state, u.doc::jsonb FROM unnest($1::text[], $3::text[], $4::text[]) AS u(id, state, doc)
     ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state, doc = EXCLUDED.doc, updated_at = ",
    now!(),
    " WHERE deliveries.node = $2 RETURNING id"
);

fn db(e: impl std::fmt::Display) -> SpoolError {
    SpoolError::Database(e.to_string())
}

fn parse(docs: Vec<String>) -> (Vec<Delivery>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for doc in docs {
        match serde_json::from_str::<Delivery>(&doc) {
            Ok(d) => out.push(d),
            Err(e) => warnings.push(format!(
                "an unreadable delivery in the cluster's database: {e}"
            )),
        }
    }
    (out, warnings)
}

impl Keep for DeliveryRows {
    /// One statement for all of `deliveries` (so one transaction, and one round trip with its
    /// statement prepared once per connection): each kept as it is now, unless another node
    /// adopted it meanwhile. A delivery named twice is kept as its last.
    fn save(&self, deliveries: &[&Delivery]) -> Result<(), SpoolError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut last: BTreeMap<&str, &Delivery> = BTreeMap::new();
        for d in deliveries {
            last.insert(&d.id, d);
        }
        let mut ids = Vec::with_capacity(last.len());
        let mut states = Vec::with_capacity(last.len());
        let mut docs = Vec::with_capacity(last.len());
        for (id, d) in last {
            ids.push(id);
            states.push(d.state.as_str());
            docs.push(serde_json::to_string(d).expect("a delivery always serializes"));
        }
        let run = self.cluster.leases.beating();
        let mut client = self.cluster.client().map_err(db)?;
        let rows = client
            .query(SAVE, &[&ids, &self.cluster.node, &states, &docs])
            .map_err(db)?;
        let own: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        let (own, lost): (Vec<String>, Vec<String>) = ids
            .iter()
            .map(|id| id.to_string())
            .partition(|id| own.contains(id));
        if !lost.is_empty() {
            tracing::info!(
                count = lost.len(),
                "deliveries another node adopted while this node was away are left to it"
            );
        }
        self.note(run, &own, &lost);
        Ok(())
    }

    fn may_send(&self, d: &Delivery) -> Sendable {
        let Some(run) = self.cluster.leases.beating() else {
            return Sendable::Later;
        };
        {
            let mine = self.mine();
            if mine.lost.contains(&d.id) {
                return Sendable::Gone;
            }
            if mine.run == run && mine.ids.contains(&d.id) {
                return Sendable::Now;
            }
        }
        let owner = self.cluster.client().map_err(db).and_then(|mut client| {
            client
                .query_opt("SELECT node FROM deliveries WHERE id = $1", &[&d.id])
                .map_err(db)
        });
        let owner: Option<String> = match owner {
            Ok(row) => row.map(|r| r.get(0)),
            Err(e) => {
                tracing::warn!(error = %e, delivery = %d.id, "cannot check that a delivery is still this node's; trying again soon");
                return Sendable::Later;
            }
        };
        let id = std::slice::from_ref(&d.id);
        match owner {
            // No row: never saved (its save failed), or removed by this node. No other node
            // has it to send.
            None => Sendable::Now,
            Some(node) if node == self.cluster.node => {
                self.note(Some(run), id, &[]);
                Sendable::Now
            }
            Some(node) => {
                tracing::info!(delivery = %d.id, %node, "another node adopted this delivery while this node was away; left to it");
                self.note(None, &[], id);
                Sendable::Gone
            }
        }
    }

    fn load(&self) -> Result<(Vec<Delivery>, Vec<String>), SpoolError> {
        let mut client = self.cluster.client().map_err(db)?;
        let rows = client
            .query(
                "SELECT doc::text FROM deliveries WHERE node = $1",
                &[&self.cluster.node],
            )
            .map_err(db)?;
        Ok(parse(rows.iter().map(|r| r.get(0)).collect()))
    }

    fn remove(&self, id: &str) {
        {
            let mut mine = self.mine();
            mine.ids.remove(id);
            mine.lost.remove(id);
        }
        if let Ok(mut client) = self.cluster.client() {
            let _ = client.execute(
                "DELETE FROM deliveries WHERE id = $1 AND node = $2",
                &[&id, &self.cluster.node],
            );
        }
    }

    fn known(&self, ids: &[String]) -> Result<Vec<String>, SpoolError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.cluster.client().map_err(db)?;
        let rows = client
            .query("SELECT id FROM deliveries WHERE id = ANY($1)", &[&ids])
            .map_err(db)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn adopt(&self) -> Vec<Delivery> {
        let run = self.cluster.leases.beating();
        let adopted = self.cluster.client().map_err(db).and_then(|mut client| {
            client
                .query(
                    concat!(
                        "WITH orphans AS (
                        SELECT d.id FROM deliveries d
                        WHERE d.state = 'pending' AND d.node <> $1
                          AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node = d.node
                                          AND n.seen_at > ",
                        now!(),
                        " - make_interval(secs => $2))
                        ORDER BY d.id LIMIT 1000
                        FOR UPDATE SKIP LOCKED)
                     UPDATE deliveries SET node = $1, updated_at = ",
                        now!(),
                        "
                     FROM orphans WHERE deliveries.id = orphans.id
                     RETURNING deliveries.doc::text"
                    ),
                    &[&self.cluster.node, &self.cluster.ttl.as_secs_f64()],
                )
                .map_err(db)
        });
        match adopted {
            Ok(rows) => {
                let (out, warnings) = parse(rows.iter().map(|r| r.get(0)).collect());
                for w in warnings {
                    tracing::warn!("{w}");
                }
                let ids: Vec<String> = out.iter().map(|d| d.id.clone()).collect();
                self.note(run, &ids, &[]);
                if !out.is_empty() {
                    tracing::info!(
                        count = out.len(),
                        "adopted the pending deliveries of a node that is gone"
                    );
                }
                out
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for the deliveries of nodes that are gone");
                Vec::new()
            }
        }
    }
}
