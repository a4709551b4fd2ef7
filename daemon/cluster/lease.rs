//! Leases: which node serves each workspace. A lease is a row (workspace tag, node, instance,
//! epoch, expiry by the database's clock). A node takes a free or expired lease with the next
//! epoch, renews what it holds every third of the TTL, and gives up a lease it could not renew
//! before it expired. Workspaces are shared fairly by rendezvous hashing over the live nodes:
//! each workspace prefers the node whose hash with it is highest, so a joining node draws an
//! even share from every other and a leaving node's share spreads evenly over the rest.

use super::{ClusterError, Pool};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// The leases this node holds, by workspace tag: their epochs.
#[derive(Debug)]
pub struct Leases {
    pool: Pool,
    node: String,
    instance: String,
    ttl: Duration,
    held: Mutex<Held>,
    /// Signalled when a take finishes (`Held::taking` shrank).
    took: Condvar,
    /// Held while a renewal of every lease runs: one at a time. Concurrent renewals of the
    /// same rows (the loader threads taking many workspaces at once, each finding a renewal
    /// due, and the round) deadlocked in PostgreSQL (the bench saw 70 in a minute at 3,000
    /// workspaces), failed, and let every lease expire.
    renewing: Mutex<()>,
    /// The cluster's key, read again at each heartbeat (see `super::trust`).
    trust: std::sync::Arc<super::trust::Trust>,
    /// This process's hold on its node name (`super::name`): taken at the first heartbeat;
    /// once lost to another process, this one holds, renews and takes no lease.
    name: super::name::NameLock,
}

#[derive(Debug, Default)]
struct Held {
    epochs: HashMap<String, i64>,
    /// The live nodes as last read, for the fair share.
    live: Vec<String>,
    /// When the leases were last renewed (on the clock a test moves, as the leases' expiry
    /// in the database is): past the TTL, none is trusted any more.
    renewed: Option<Instant>,
    /// Leases no longer served here and given up at the next round, once the transitions
    /// under way when the workspace was dropped have committed (or been refused).
    retiring: Vec<String>,
    /// Workspaces whose lease another node held unexpired at the last round: not asked for
    /// until a round finds it free, so waiting workspaces cost no query each.
    elsewhere: std::collections::HashSet<String>,
    /// Leases found lost by a renewal made between rounds, for the next round to report.
    lost: Vec<String>,
    /// When this node's last heartbeat was sent (its row's `seen_at` is no earlier), and the
    /// number of the unbroken run of heartbeats it is part of (see `Leases::beating`).
    beat: Option<(Instant, u64)>,
    /// Tags a take of this node is under way for (`acquire`, `acquire_all`): no other take
    /// of this node asks for them until it is done. Two takes of one tag each got an epoch,
    /// the second from the first's own unexpired lease (see `TAKE_ALL`): a round's
    /// `acquire_all`, which had found a waiting workspace free before a load's `acquire` took
    /// it, moved the lease to the next epoch under the workspace just served and fenced under
    /// the first, so every write on its share was refused from then on while it stayed served
    /// (the paused-node test saw a round's handoffs never received after a takeover).
    taking: std::collections::HashSet<String>,
}

/// The tags of a take under way, let go (and the waiting takes woken) when it ends, whether
/// it took them or failed.
struct Taking<'a> {
    leases: &'a Leases,
    tags: Vec<String>,
}

impl Drop for Taking<'_> {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        for tag in &self.tags {
            held.taking.remove(tag);
        }
        drop(held);
        self.leases.took.notify_all();
    }
}

/// What a renewal round found.
#[derive(Debug, Default)]
pub struct Renewal {
    /// Leases this node no longer holds (expired, or taken by another node): stop serving them.
    pub lost: Vec<String>,
    /// Leases this node holds that another live node should serve: stop serving them now (a
    /// few per round); their leases are given up at the next round (`release`).
    pub surplus: Vec<String>,
    /// Leases of workspaces no longer served here since the last round: give them up now.
    pub release: Vec<String>,
    /// How many leases another node held at the last round and none holds now (expired, or
    /// given up): the workspaces waiting here may be taken at once.
    pub freed: usize,
}

impl Leases {
    pub(super) fn new(
        pool: Pool,
        node: String,
        instance: String,
        ttl: Duration,
        trust: std::sync::Arc<super::trust::Trust>,
        pg_config: &postgres::Config,
    ) -> Leases {
        Leases {
            name: super::name::NameLock::new(pg_config, &node, ttl),
            pool,
            node,
            instance,
            ttl,
            held: Mutex::default(),
            took: Condvar::new(),
            renewing: Mutex::new(()),
            trust,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ttl_s(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// The epoch under which this node may write for `tag`, if it holds its lease and renewed
    /// it recently enough to write (`may_write`).
    pub fn epoch(&self, tag: &str) -> Option<i64> {
        if self.name.lost() {
            return None;
        }
        let held = self.lock();
        let fresh = held
            .renewed
            .is_some_and(|at| may_write(since(at), self.ttl));
        fresh.then(|| held.epochs.get(tag).copied()).flatten()
    }

    /// Whether this node holds the lease of `tag` and is not giving it up: a workspace may
    /// be served here only then.
    pub fn keeps(&self, tag: &str) -> bool {
        let held = self.lock();
        held.epochs.contains_key(tag) && !held.retiring.iter().any(|t| t == tag)
    }

    pub fn held(&self) -> usize {
        self.lock().epochs.len()
    }

    /// The run of heartbeats this node is in, while its last heartbeat is recent enough that
    /// no other node can have found it gone (`seen_at` older than the TTL: another node then
    /// adopts its pending deliveries, `deliveries::adopt`). A run ends at a gap between two
    /// heartbeats in which another node could have: what the node held before it may be
    /// another's now. `None`: the last heartbeat is too old to act on.
    pub fn beating(&self) -> Option<u64> {
        if self.name.lost() {
            return None;
        }
        let held = self.lock();
        let (at, run) = held.beat?;
        may_write(since(at), self.ttl).then_some(run)
    }

    /// Registers this run of the node (or refreshes it) and reads the live nodes.
    /// `peer_url` is where the other nodes forward requests about this node's workspaces.
    pub fn heartbeat(&self, public_url: &str, peer_url: &str) -> Result<(), ClusterError> {
        // First: a process that does not hold its node name is not this node.
        self.name.hold()?;
        let sent = crate::clock::instant();
        let mut client = super::clock::checkout(&self.pool)?;
        // The key first: a node seen on a round has read the key as it was then.
        self.trust.refresh(&mut client)?;
        // The node's row and the live nodes in one statement. The `SELECT` of `nodes` reads
        // the rows as they were before the upsert (one snapshot), so this node is added from
        // what the upsert returns: it is live from its first round.
        let rows = client.query(
            concat!(
                "WITH me AS (
                 INSERT INTO nodes (node, instance, public_url, peer_url, started_at, seen_at, seals)
             VALUES ($1, $2, $3, $4, ",
                now!(),
                ", ",
                now!(),
                ", true)
             ON CONFLICT (node) DO UPDATE SET instance = $2, public_url = $3, peer_url = $4,
                 seals = true, seen_at = ",
                now!(),
                ",
                 started_at = CASE WHEN nodes.instance = $2 THEN nodes.started_at ELSE ",
                now!(),
                " END
             RETURNING node)
             SELECT node FROM me
             UNION SELECT node FROM nodes WHERE seen_at > ",
                now!(),
                " - make_interval(secs => $5) ORDER BY 1"
            ),
            &[
                &self.node,
                &self.instance,
                &public_url,
                &peer_url,
                &self.ttl_s(),
            ],
        )?;
        let mut held = self.lock();
        held.live = rows.iter().map(|r| r.get(0)).collect();
        // Judged when the answer came: the row was last refreshed no earlier than the last
        // heartbeat's sending and this one's no later than now, so no gap in between reached
        // the TTL if this one came back soon enough.
        let run = match held.beat {
            Some((at, run)) if may_write(since(at), self.ttl) => run,
            Some((_, run)) => run + 1,
            None => 1,
        };
        held.beat = Some((sent, run));
        Ok(())
    }

    /// The live node `tag` prefers (rendezvous hashing).
    pub fn preferred(&self, tag: &str) -> Option<String> {
        let held = self.lock();
        held.live
            .iter()
            .max_by_key(|node| score(tag, node))
            .cloned()
    }

    /// Takes the lease of `tag` if this node should serve it and it is free: this node is the
    /// one it prefers, or its lease has been expired a whole TTL (its preferred node is not
    /// taking it). `Ok(true)`: held now, under a new epoch.
    pub fn acquire(&self, tag: &str) -> Result<bool, ClusterError> {
        if self.name.lost() {
            return Ok(false);
        }
        let _taking = {
            let mut held = self.lock();
            // Another take of this node may be asking for it: its outcome decides.
            while held.taking.contains(tag) {
                held = self.took.wait(held).unwrap_or_else(|e| e.into_inner());
            }
            if held.retiring.iter().any(|t| t == tag) || held.elsewhere.contains(tag) {
                return Ok(false);
            }
            if held.epochs.contains_key(tag) {
                return Ok(true);
            }
            held.taking.insert(tag.to_string());
            Taking {
                leases: self,
                tags: vec![tag.to_string()],
            }
        };
        let mine = self.preferred(tag).is_none_or(|n| n == self.node);
        let grace = if mine { 0.0 } else { self.ttl_s() };
        let mut client = super::clock::checkout(&self.pool)?;
        // Taking many workspaces (a start, a takeover) can outlast the leases taken first:
        // they are renewed on the way, not only by the rounds.
        let due = self
            .lock()
            .renewed
            .is_some_and(|at| since(at) > self.ttl / 3);
        if due {
            // One thread renews; the others go on taking (it renews theirs too).
            if let Ok(_one) = self.renewing.try_lock() {
                self.refresh(&mut client)?;
            }
        }
        let one = vec![tag.to_string()];
        let row = client.query_opt(
            TAKE_ALL,
            &[&one, &self.node, &self.instance, &self.ttl_s(), &grace],
        )?;
        let Some(row) = row else {
            return Ok(false);
        };
        let epoch: i64 = row.get(1);
        let mut held = self.lock();
        held.epochs.insert(tag.to_string(), epoch);
        held.renewed.get_or_insert_with(crate::clock::instant);
        tracing::info!(workspace = tag, epoch, "lease taken");
        Ok(true)
    }

    /// Takes at once the leases of `tags` that `acquire` would take one by one: two statements
    /// (those this node is preferred for, then the rest after their grace) instead of one
    /// each. A takeover frees a dead node's whole share in the same round, and the waiting
    /// workspaces' loads then find their leases held. Returns how many were taken.
    pub fn acquire_all(&self, tags: &[String]) -> Result<usize, ClusterError> {
        if self.name.lost() {
            return Ok(0);
        }
        // Those free are marked as being taken in the same look, so no load's `acquire`
        // takes one of them meanwhile (nor this one a lease a load took since).
        let (mut mine, mut others, _taking) = {
            let mut held = self.lock();
            let mut free: Vec<String> = tags
                .iter()
                .filter(|t| {
                    !held.epochs.contains_key(*t)
                        && !held.elsewhere.contains(*t)
                        && !held.retiring.contains(t)
                        && !held.taking.contains(*t)
                })
                .cloned()
                .collect();
            free.sort();
            free.dedup();
            held.taking.extend(free.iter().cloned());
            let (mine, others): (Vec<String>, Vec<String>) = free
                .iter()
                .cloned()
                .partition(|t| preferred_among(t, &held.live).is_none_or(|n| *n == self.node));
            let taking = Taking {
                leases: self,
                tags: free,
            };
            (mine, others, taking)
        };
        // In one order, and never beside a renewal: two statements locking the same rows in
        // different orders deadlock.
        mine.sort();
        others.sort();
        let _one = self.renewing.lock().unwrap_or_else(|e| e.into_inner());
        let mut client = super::clock::checkout(&self.pool)?;
        let mut taken = Vec::new();
        for (group, grace) in [(mine, 0.0), (others, self.ttl_s())] {
            if group.is_empty() {
                continue;
            }
            let rows = client.query(
                TAKE_ALL,
                &[&group, &self.node, &self.instance, &self.ttl_s(), &grace],
            )?;
            taken.extend(
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1))),
            );
        }
        let count = taken.len();
        let mut held = self.lock();
        for (tag, epoch) in taken {
            tracing::debug!(workspace = %tag, epoch, "lease taken");
            held.epochs.insert(tag, epoch);
        }
        if count > 0 {
            held.renewed.get_or_insert_with(crate::clock::instant);
            tracing::info!(leases = count, "leases taken at once");
        }
        Ok(count)
    }

    /// Extends every lease this node holds by a TTL (one statement for all); those it no
    /// longer holds are dropped here and reported by the next `renew`.
    fn refresh(&self, client: &mut super::conn::Conn) -> Result<(), ClusterError> {
        self.name.refuse_if_lost()?;
        let started = crate::clock::instant();
        // Judged: the leases held before the statement, and still under the same epoch after
        // it. One taken meanwhile (a load's `acquire` beside this renewal) is newer than the
        // statement's snapshot and was not renewed by it, but it is not lost: its expiry is a
        // whole TTL after it was taken.
        let before = self.lock().epochs.clone();
        let rows = client.query(
            concat!(
                "UPDATE leases SET expires_at = ",
                now!(),
                " + make_interval(secs => $3)
             WHERE node = $1 AND instance = $2 AND expires_at > ",
                now!(),
                "
             RETURNING tag, epoch"
            ),
            &[&self.node, &self.instance, &self.ttl_s()],
        )?;
        let renewed: HashMap<String, i64> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut held = self.lock();
        let lost: Vec<String> = before
            .into_iter()
            .filter(|(tag, epoch)| {
                renewed.get(tag) != Some(epoch) && held.epochs.get(tag) == Some(epoch)
            })
            .map(|(tag, _)| tag)
            .collect();
        for tag in &lost {
            held.epochs.remove(tag);
            tracing::warn!(workspace = %tag, "lease lost; no longer serving the workspace");
        }
        held.lost.extend(lost);
        held.renewed = Some(started);
        Ok(())
    }

    /// Renews every lease this node holds; names those it lost and those it should give up.
    pub fn renew(&self) -> Result<Renewal, ClusterError> {
        let mut client = super::clock::checkout(&self.pool)?;
        {
            let _one = self.renewing.lock().unwrap_or_else(|e| e.into_inner());
            self.refresh(&mut client)?;
        }
        let elsewhere: std::collections::HashSet<String> = client
            .query(
                concat!(
                    "SELECT tag FROM leases WHERE node <> $1 AND expires_at > ",
                    now!()
                ),
                &[&self.node],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut held = self.lock();
        let lost = std::mem::take(&mut held.lost);
        held.retiring.retain(|t| !lost.contains(t));
        let freed = held.elsewhere.difference(&elsewhere).count();
        held.elsewhere = elsewhere;
        // Those to give up stay retiring until `release` gives each up: `acquire` refuses
        // them meanwhile. (Taken out here, a workspace found waiting in between was taken
        // "again" from the epochs still held, served, and then its lease given up under it:
        // at 3,000 workspaces over 2 nodes one node served 728 workspaces without a lease.)
        let release = held.retiring.clone();
        let live = held.live.clone();
        let surplus: Vec<String> = surplus(&held.epochs, &live, &self.node)
            .into_iter()
            .filter(|t| !release.contains(t))
            .collect();
        held.retiring.extend(surplus.iter().cloned());
        Ok(Renewal {
            lost,
            surplus,
            release,
            freed,
        })
    }

    /// Gives a lease up now, so the node it prefers can take it at once.
    pub fn release(&self, tag: &str) -> Result<(), ClusterError> {
        let epoch = {
            let mut held = self.lock();
            held.retiring.retain(|t| t != tag);
            held.epochs.remove(tag)
        };
        // From here `acquire` may take it again, but only as a new lease (a new epoch, which
        // this `UPDATE` then leaves alone) or once it is free: never from the epoch given up.
        let Some(epoch) = epoch else {
            return Ok(());
        };
        let mut client = super::clock::checkout(&self.pool)?;
        // Just expired: free for the node it prefers at once, and for the others only a TTL
        // later (see `acquire`), so it is not taken back here in the meantime.
        client.execute(
            concat!(
                "UPDATE leases SET expires_at = ",
                now!(),
                " WHERE tag = $1 AND node = $2 AND epoch = $3"
            ),
            &[&tag, &self.node, &epoch],
        )?;
        tracing::info!(
            workspace = tag,
            epoch,
            "lease given up to the node it prefers"
        );
        Ok(())
    }

    /// Forgets every lease after the database could not be reached for a whole TTL: they
    /// may be another node's now.
    pub fn expire_if_silent(&self) -> Vec<String> {
        let mut held = self.lock();
        if held.renewed.is_some_and(|at| since(at) >= self.ttl) {
            return held.epochs.drain().map(|(tag, _)| tag).collect();
        }
        Vec::new()
    }
}

/// Takes the leases of the tags in `$1` for node `$2`, run `$3`, for `$4` seconds, under the
/// next epoch: each if it is free, expired `$5` seconds ago or more, or this run's own
/// unexpired lease (which a renewal racing the take counted as lost: renewed, never served,
/// for good, unless taken again). Returns (tag, epoch) of each taken.
const TAKE_ALL: &str = concat!(
    "INSERT INTO leases (tag, node, instance, epoch, expires_at)
     SELECT t, $2, $3, 1, ",
    now!(),
    " + make_interval(secs => $4) FROM unnest($1::text[]) AS t
     ON CONFLICT (tag) DO UPDATE
        SET node = $2, instance = $3, epoch = leases.epoch + 1,
            expires_at = ",
    now!(),
    " + make_interval(secs => $4)
        WHERE leases.expires_at < ",
    now!(),
    " - make_interval(secs => $5)
           OR (leases.node = $2 AND leases.instance = $3 AND leases.expires_at > ",
    now!(),
    ")
     RETURNING tag, epoch"
);

/// Time since `at` (a `crate::clock::instant`), on the clock a test may move.
/// Whether a node may still write on a share `elapsed` after its last renewal began. The
/// share cannot check a fencing token, so the node checks itself right before each write
/// (`crate::workspace::fence`); a pause between that check and the write (the process
/// stopped, a VM frozen) could land the write after the lease ran out. Writing stops a
/// quarter of the TTL early, so a pause shorter than that still lands while the lease holds
/// and before any successor may take it. Renewals run every third of the TTL, so a node that
/// renews on time never reaches the margin.
fn may_write(elapsed: Duration, ttl: Duration) -> bool {
    elapsed < ttl - ttl / 4
}

fn since(at: Instant) -> Duration {
    crate::clock::instant().saturating_duration_since(at)
}

/// The node of `live` that workspace `tag` prefers: where it settles once the shares have
/// moved (for `baton cluster status` and the tests).
pub fn preferred_among<'a>(tag: &str, live: &'a [String]) -> Option<&'a String> {
    live.iter().max_by_key(|node| score(tag, node))
}

/// The rendezvous score of a node for a workspace.
fn score(tag: &str, node: &str) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(tag.as_bytes())
        .chain_update([0])
        .chain_update(node.as_bytes())
        .finalize();
    let mut out = [0; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// Leases held here that another live node should serve: at most a tenth a round (at least
/// one), so a joining node's share moves over gradually.
fn surplus(epochs: &HashMap<String, i64>, live: &[String], me: &str) -> Vec<String> {
    let mut out: Vec<String> = epochs
        .keys()
        .filter(|tag| {
            live.iter()
                .max_by_key(|node| score(tag, node))
                .is_some_and(|n| n != me)
        })
        .cloned()
        .collect();
    out.sort();
    out.truncate((epochs.len() / 10).max(1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_stops_a_quarter_ttl_before_the_lease_can_run_out() {
        let ttl = Duration::from_secs(12);
        // Renewed on time (every third of the TTL), with room for a late round.
        assert!(may_write(Duration::from_secs(4), ttl));
        assert!(may_write(Duration::from_millis(8_999), ttl));
        // A pause between the check and the write of up to 3 s still lands within the lease.
        assert!(!may_write(Duration::from_secs(9), ttl));
        assert!(!may_write(Duration::from_secs(12), ttl));
    }

    #[test]
    fn rendezvous_hashing_shares_workspaces_evenly_and_moves_only_a_leavers_share() {
        let nodes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let pick = |tag: &str, live: &[String]| {
            live.iter().max_by_key(|n| score(tag, n)).cloned().unwrap()
        };
        let tags: Vec<String> = (0..3000).map(|i| format!("ws-{i}")).collect();
        let mut counts: HashMap<String, usize> = HashMap::new();
        for tag in &tags {
            *counts.entry(pick(tag, &nodes)).or_default() += 1;
        }
        for n in &nodes {
            let c = counts[n];
            assert!((850..=1150).contains(&c), "{n}: {c} of 3000");
        }
        let two = &nodes[..2];
        for tag in &tags {
            let before = pick(tag, &nodes);
            if before != "c" {
                assert_eq!(pick(tag, two), before, "{tag} moved though its node stayed");
            }
        }
    }
}
