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
//!
//! Every row is sealed (`outbox::seal`), and one that fails its seal is never sent. Rows an
//! older baton wrote have no seal: they are read as then and sealed, once, by the first node
//! that finds every live node sealing (`nodes.seals`), which then marks the table sealed
//! (`deliveries_sealed`, as `outbox/sealed` marks a spool). From then on a row without a seal
//! was not written by a baton: it is damaged like any other that fails its check.

use super::Cluster;
use crate::outbox::{
    damaged_delivery, seal, unseal_doc, Adopted, Delivery, Keep, Loaded, Owner, Sendable,
    SpoolError,
};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub(super) struct DeliveryRows {
    cluster: Arc<Cluster>,
    mine: Mutex<Mine>,
    /// Whether the table was found marked sealed (`deliveries_sealed`): a mark is never
    /// taken back by a node, so it is not read again once seen.
    sealed: AtomicBool,
}

/// The deliveries whose rows this node found its own during a run of heartbeats (and so its
/// own until the run ends), and those it found another node's.
#[derive(Default)]
struct Mine {
    run: u64,
    ids: HashSet<String>,
    lost: HashSet<String>,
    /// Every delivery whose row this node has seen as its own: one whose row is gone since
    /// was delivered and removed by a node that adopted it.
    saved: HashSet<String>,
    /// Deliveries this node forgot whose rows it could not delete: not to be read back as
    /// missing from memory (`Keep::fetch`), but deleted again.
    undeleted: HashSet<String>,
}

impl DeliveryRows {
    pub(super) fn new(cluster: Arc<Cluster>) -> DeliveryRows {
        DeliveryRows {
            cluster,
            mine: Mutex::default(),
            sealed: AtomicBool::new(false),
        }
    }

    /// Whether every row is sealed, so one without a seal is damaged. Until the table is
    /// found marked so, each call tries to mark it (`seal_rows`); once marked, it costs
    /// nothing. A failure reads as not marked (rows of older versions are read as then, as
    /// before), and is tried again at the next call.
    fn all_sealed(&self, client: &mut postgres::Client) -> bool {
        if self.sealed.load(Ordering::Acquire) {
            return true;
        }
        match seal_rows(client, &self.cluster.node, self.cluster.ttl.as_secs_f64()) {
            Ok(marked) => {
                self.sealed.store(marked, Ordering::Release);
                marked
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot look whether every delivery row is sealed; rows without a seal are read as an older baton wrote them until it can");
                false
            }
        }
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, Mine> {
        self.mine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes rows found this node's (`own`) and another's (`lost`) by a statement sent during
    /// run `run` (read before it was sent: a statement answered after a gap began may have
    /// seen the row before another node adopted it, and the run it began in has ended).
    fn note(&self, run: Option<u64>, own: &[String], lost: &[String]) {
        self.mine().note(run, own, lost);
    }
}

impl Mine {
    fn note(&mut self, run: Option<u64>, own: &[String], lost: &[String]) {
        // A delivery can come back to this node (adopted back from a node gone since).
        for id in own {
            self.lost.remove(id);
            self.saved.insert(id.clone());
        }
        for id in lost {
            self.ids.remove(id);
        }
        self.lost.extend(lost.iter().cloned());
        let Some(run) = run else { return };
        if self.run != run {
            if self.run > run {
                return;
            }
            self.run = run;
            self.ids.clear();
        }
        self.ids.extend(own.iter().cloned());
    }

    /// What is known of delivery `id` during run `run` without asking the database.
    fn known(&self, run: u64, id: &str) -> Option<Sendable> {
        if self.lost.contains(id) {
            return Some(Sendable::Gone);
        }
        (self.run == run && self.ids.contains(id)).then_some(Sendable::Now)
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

/// The deliveries of rows `(id, doc)`, each checked against its seal (`outbox::seal`): a row
/// damaged (in the database, or between it and this node) is never sent: it is listed dead
/// with why (`damaged`), and named in the warnings.
/// `all_sealed`: the table is marked sealed, so a row without a seal is damaged too.
fn parse(
    rows: Vec<(String, String)>,
    all_sealed: bool,
) -> (Vec<Delivery>, Vec<String>, Vec<Delivery>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut damaged = Vec::new();
    for (id, doc) in rows {
        match unseal_doc(doc.as_bytes(), &id, all_sealed) {
            Ok((d, _)) => out.push(d),
            Err(why) => {
                warnings.push(format!(
                    "delivery {id} in the cluster's database is damaged ({why}): not sent, listed \
                     as dead (GET /api/v1/deliveries?state=dead); its event is in its workspace's \
                     audit log: tell the receiver by hand if it still needs it"
                ));
                damaged.push(damaged_delivery(&id, doc.as_bytes(), &why));
            }
        }
    }
    (out, warnings, damaged)
}

impl DeliveryRows {
    /// Keeps damaged deliveries as the dead ones they are listed as, sealed again.
    fn bury(&self, damaged: &[Delivery]) {
        let dead: Vec<&Delivery> = damaged.iter().collect();
        if let Err(e) = self.save(&dead) {
            tracing::error!(error = %e, "cannot mark damaged deliveries dead in the cluster's database; they are listed dead here, and found damaged again at the next start");
        }
    }
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
            docs.push(String::from_utf8(seal(d)).expect("JSON is UTF-8"));
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
        if let Some(known) = self.mine().known(run, &d.id) {
            return known;
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
            // No row, and never one seen: its save failed, so no other node has it to send.
            // A row seen and gone was removed by the node that adopted and delivered it.
            None if !self.mine().saved.contains(&d.id) => Sendable::Now,
            None => {
                tracing::info!(delivery = %d.id, "another node delivered and removed this delivery while this node was away; not sent again");
                self.note(None, &[], id);
                Sendable::Gone
            }
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

    fn owner(&self, id: &str) -> Result<Owner, SpoolError> {
        let mut client = self.cluster.client().map_err(db)?;
        let row = client
            .query_opt("SELECT node FROM deliveries WHERE id = $1", &[&id])
            .map_err(db)?;
        let ids = [id.to_string()];
        Ok(match row.map(|r| r.get::<_, String>(0)) {
            Some(node) if node == self.cluster.node => Owner::This,
            Some(node) => {
                self.note(None, &[], &ids);
                Owner::Other(node)
            }
            // Never saved (its save failed): no other node has it.
            None if !self.mine().saved.contains(id) => Owner::This,
            None => {
                self.note(None, &[], &ids);
                Owner::Removed
            }
        })
    }

    fn load(&self) -> Result<Loaded, SpoolError> {
        let run = self.cluster.leases.beating();
        let mut client = self.cluster.client().map_err(db)?;
        let all_sealed = self.all_sealed(&mut client);
        let rows = client
            .query(
                "SELECT id, doc::text FROM deliveries WHERE node = $1",
                &[&self.cluster.node],
            )
            .map_err(db)?;
        let (mut out, warnings, damaged) = parse(
            rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            all_sealed,
        );
        let own: Vec<String> = out.iter().map(|d| d.id.clone()).collect();
        self.note(run, &own, &[]);
        self.bury(&damaged);
        // Only those found damaged now: a row buried at an earlier start reads as the dead
        // delivery it was kept as.
        let found: Vec<String> = damaged.iter().map(|d| d.id.clone()).collect();
        out.extend(damaged);
        Ok(Loaded {
            deliveries: out,
            warnings,
            damaged: found,
            sealed: 0,
        })
    }

    fn remove(&self, id: &str) {
        {
            let mut mine = self.mine();
            mine.ids.remove(id);
            mine.lost.remove(id);
            mine.saved.remove(id);
        }
        let deleted = self.cluster.client().map_err(db).and_then(|mut client| {
            client
                .execute(
                    "DELETE FROM deliveries WHERE id = $1 AND node = $2",
                    &[&id, &self.cluster.node],
                )
                .map_err(db)
        });
        if let Err(e) = deleted {
            tracing::warn!(error = %e, delivery = id, "cannot delete a forgotten delivery's row; deleted at a later round");
            self.mine().undeleted.insert(id.to_string());
        }
    }

    fn fetch(&self, ids: &[String]) -> Vec<Delivery> {
        let undeleted: Vec<String> = {
            let mine = self.mine();
            ids.iter()
                .filter(|id| mine.undeleted.contains(*id))
                .cloned()
                .collect()
        };
        let ids: Vec<&str> = ids
            .iter()
            .filter(|id| !undeleted.contains(*id))
            .map(String::as_str)
            .collect();
        let run = self.cluster.leases.beating();
        let read = self.cluster.client().map_err(db).and_then(|mut client| {
            if !undeleted.is_empty() {
                client
                    .execute(
                        "DELETE FROM deliveries WHERE id = ANY($1) AND node = $2",
                        &[&undeleted, &self.cluster.node],
                    )
                    .map_err(db)?;
                let mut mine = self.mine();
                for id in &undeleted {
                    mine.undeleted.remove(id);
                }
            }
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            client
                .query(
                    "SELECT id, doc::text FROM deliveries \
                     WHERE id = ANY($1) AND node = $2 AND state = 'pending'",
                    &[&ids, &self.cluster.node],
                )
                .map_err(db)
        });
        let rows = match read {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read back this node's deliveries missing from its memory; trying again at the next round");
                return Vec::new();
            }
        };
        let all_sealed = self.sealed.load(Ordering::Acquire);
        let (mut out, warnings, damaged) = parse(
            rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
            all_sealed,
        );
        for w in warnings {
            tracing::error!("{w}");
        }
        self.bury(&damaged);
        out.extend(damaged);
        let own: Vec<String> = out.iter().map(|d| d.id.clone()).collect();
        self.note(run, &own, &[]);
        out
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

    fn adopt(&self) -> Adopted {
        let run = self.cluster.leases.beating();
        let mut all_sealed = false;
        let adopted = self.cluster.client().map_err(db).and_then(|mut client| {
            all_sealed = self.all_sealed(&mut client);
            let rows = client
                .query(
                    ADOPT,
                    &[&self.cluster.node, &self.cluster.ttl.as_secs_f64()],
                )
                .map_err(db)?;
            lose_answer(&rows)?;
            Ok(rows)
        });
        match adopted {
            Ok(rows) => {
                let (taken, own): (Vec<_>, Vec<_>) = rows
                    .iter()
                    .partition(|r| r.get::<_, Option<String>>(1).is_some());
                let own_pending: Vec<String> = own.iter().map(|r| r.get(0)).collect();
                let (mut out, warnings, damaged) = parse(
                    taken.iter().map(|r| (r.get(0), r.get(1))).collect(),
                    all_sealed,
                );
                for w in warnings {
                    tracing::error!("{w}");
                }
                self.bury(&damaged);
                out.extend(damaged);
                let ids: Vec<String> = out.iter().map(|d| d.id.clone()).collect();
                self.note(run, &ids, &[]);
                if !out.is_empty() {
                    tracing::info!(
                        count = out.len(),
                        "adopted the pending deliveries of a node that is gone"
                    );
                }
                Adopted {
                    deliveries: out,
                    own_pending,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for the deliveries of nodes that are gone");
                Adopted::default()
            }
        }
    }
}

/// Seals the rows an older baton wrote and marks the table sealed, if it is not marked yet and
/// every live node seals (a node of an older baton still running would go on writing rows
/// without a seal, each then damaged). One transaction, the rows locked while sealed; a row
/// without a seal that is not a delivery stays as it is, damaged wherever it is read.
/// `Ok(true)`: the table is marked sealed.
fn seal_rows(
    client: &mut postgres::Client,
    node: &str,
    ttl_s: f64,
) -> Result<bool, postgres::Error> {
    let mut tx = client.transaction()?;
    if tx
        .query_opt("SELECT 1 FROM deliveries_sealed", &[])?
        .is_some()
    {
        tx.commit()?;
        return Ok(true);
    }
    let older: Vec<String> = tx
        .query(
            concat!(
                "SELECT node FROM nodes WHERE NOT seals AND seen_at > ",
                now!(),
                " - make_interval(secs => $1) ORDER BY node"
            ),
            &[&ttl_s],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !older.is_empty() {
        tx.commit()?;
        tracing::info!(nodes = ?older, "nodes of a baton from before delivery rows were sealed are live: rows without a seal are read as they wrote them until those nodes are upgraded");
        return Ok(false);
    }
    let rows = tx.query(
        "SELECT id, doc::text FROM deliveries WHERE NOT doc ? 'sha256' ORDER BY id FOR UPDATE",
        &[],
    )?;
    let mut sealed = 0;
    for row in &rows {
        let (id, doc): (String, String) = (row.get(0), row.get(1));
        let Ok((d, false)) = unseal_doc(doc.as_bytes(), &id, false) else {
            continue;
        };
        let doc = String::from_utf8(seal(&d)).expect("JSON is UTF-8");
        tx.execute(
            "UPDATE deliveries SET doc = $2::text::jsonb WHERE id = $1",
            &[&id, &doc],
        )?;
        sealed += 1;
    }
    tx.execute(
        "INSERT INTO deliveries_sealed (node) VALUES ($1) ON CONFLICT DO NOTHING",
        &[&node],
    )?;
    tx.commit()?;
    tracing::info!(
        sealed,
        "every delivery row is sealed now: a row without a seal is damaged from now on"
    );
    Ok(true)
}

/// Adopts (for node $1) up to 1000 pending deliveries of nodes not seen within $2 seconds:
/// rows `(id, doc)`. Then rows `(id, NULL)`: the ids of $1's pending deliveries before these,
/// read in the same statement (its snapshot is from before the update), so a round checks
/// its memory against them at no transaction of its own.
const ADOPT: &str = concat!(
    "WITH orphans AS (
        SELECT d.id FROM deliveries d
        WHERE d.state = 'pending' AND d.node <> $1
          AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node = d.node AND n.seen_at > ",
    now!(),
    " - make_interval(secs => $2))
        ORDER BY d.id LIMIT 1000
        FOR UPDATE SKIP LOCKED),
     adopted AS (
        UPDATE deliveries SET node = $1, updated_at = ",
    now!(),
    "
        FROM orphans WHERE deliveries.id = orphans.id
        RETURNING deliveries.id, deliveries.doc::text AS doc)
     SELECT id, doc FROM adopted
     UNION ALL
     SELECT id, NULL FROM deliveries WHERE node = $1 AND state = 'pending'"
);

/// The environment variable naming a file: while it is there, a debug build loses the answer
/// to the first adoption that took rows (after its commit, as a connection dropped then
/// would), and removes the file. Release builds never read it.
pub const LOSE_ADOPTION_VAR: &str = "BATON_TEST_LOSE_ADOPTION";

/// An adoption's answer lost, if a debug build was asked to (`LOSE_ADOPTION_VAR`).
fn lose_answer(rows: &[postgres::Row]) -> Result<(), SpoolError> {
    if !cfg!(debug_assertions) {
        return Ok(());
    }
    static FILE: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(file) = FILE
        .get_or_init(|| std::env::var_os(LOSE_ADOPTION_VAR).map(Into::into))
        .as_ref()
    else {
        return Ok(());
    };
    let took = rows.iter().any(|r| r.get::<_, Option<String>>(1).is_some());
    if took && std::fs::remove_file(file).is_ok() {
        return Err(SpoolError::Database(
            "the connection was lost after the adoption's commit (a test's fault)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn a_delivery_is_known_sendable_only_within_the_run_its_row_was_seen_in() {
        let mut mine = Mine::default();
        mine.note(Some(1), &ids(&["x", "y"]), &[]);
        assert_eq!(mine.known(1, "x"), Some(Sendable::Now));
        // A gap: the next run asks the database.
        assert_eq!(mine.known(2, "x"), None);
        // An answer to a statement sent during an older run says nothing of the new one.
        mine.note(Some(2), &ids(&["y"]), &[]);
        mine.note(Some(1), &ids(&["x"]), &[]);
        assert_eq!(mine.known(2, "x"), None);
        assert_eq!(mine.known(2, "y"), Some(Sendable::Now));
        // Unknown is not sendable without asking.
        assert_eq!(mine.known(2, "z"), None);
    }

    #[test]
    fn a_delivery_found_another_nodes_and_adopted_back_is_sendable_again() {
        let mut mine = Mine::default();
        mine.note(Some(1), &ids(&["x"]), &[]);
        // Seen as another node's after a gap: left to it.
        mine.note(None, &[], &ids(&["x"]));
        assert_eq!(mine.known(2, "x"), Some(Sendable::Gone));
        assert_eq!(mine.known(1, "x"), Some(Sendable::Gone));
        // That node is gone since and this one adopts the delivery back.
        mine.note(Some(3), &ids(&["x"]), &[]);
        assert_eq!(mine.known(3, "x"), Some(Sendable::Now));
        assert!(mine.saved.contains("x"));
    }
}
