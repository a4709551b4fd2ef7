//! This node's share of a cluster's workspaces: a workspace is served while this node holds
//! its lease (see `crate::cluster::lease`), and dropped, in memory only, once the lease is lost
//! or given up to the node it prefers. Its records stay in the database for the next holder.

use crate::app::App;
use crate::workspace::Workspace;

/// Whether this node may serve `ws`: `None` outside a cluster (the owner lock decides).
pub(in crate::app) fn lease(app: &App, ws: &Workspace) -> Option<bool> {
    let cluster = app.inner.cluster.as_ref()?;
    let tag = crate::store::tag(ws);
    Some(match cluster.leases.acquire(&tag) {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(workspace = %ws.name, error = %e, "cannot take the workspace's lease; trying again in a few seconds");
            false
        }
    })
}

/// `ws` as served here: in a cluster, every write on its share checks first that this node
/// still holds its lease under the epoch it holds now (see `crate::cluster::fence`), counted
/// as `baton_errors_total{kind="fenced"}` when refused. As it is outside a cluster.
pub(in crate::app) fn fenced(app: &App, ws: Workspace) -> Workspace {
    let Some(cluster) = app.inner.cluster.as_ref() else {
        return ws;
    };
    let tag = crate::store::tag(&ws);
    let label = crate::metrics::KindLabel {
        kind: "fenced".into(),
    };
    let refused = app.metrics().errors.get_or_create(&label).clone();
    let fence = cluster.fence(&tag, &ws.name, refused);
    ws.fenced(fence)
}

/// Whether `ws`, just added to the served workspaces, may stay: a renewal round that found
/// its lease lost, or gave it up to the node it prefers, while it was loading (after `lease`)
/// had nothing to drop yet, so it is dropped now. Without this, a node went on serving a
/// workspace whose lease it had given up, beside the node that took it (seen at a start of
/// 1,000 workspaces over 2 nodes: 123 served twice, and the start never covered them all).
/// Checked after the workspace is added and the round drops what it marks after marking
/// it, so one of the two always sees the other.
pub(in crate::app) fn keep_if_leased(app: &App, ws: &Workspace) -> bool {
    let Some(cluster) = app.inner.cluster.as_ref() else {
        return true;
    };
    let tag = crate::store::tag(ws);
    if !cluster.leases.keeps(&tag) {
        tracing::info!(workspace = %ws.name, "the lease moved on while the workspace loaded");
        app.unserve(&tag);
        return false;
    }
    true
}

impl App {
    /// Renews this node's leases and registration; drops the workspaces whose lease is lost,
    /// and gives up a few that another live node should serve. Called every third of the TTL.
    pub fn keep_leases(&self) {
        let Some(cluster) = self.inner.cluster.clone() else {
            return;
        };
        if let Err(e) = cluster.leases.heartbeat(
            &self.inner.config.public_url,
            &cluster.peer_url(&self.inner.config),
        ) {
            tracing::warn!(error = %e, "cannot reach the cluster's database to renew this node");
        }
        // The outbox's marks moved since the last round and not written with an anchor.
        cluster.write_marks();
        match cluster.leases.renew() {
            Ok(renewal) => {
                for tag in renewal.lost {
                    self.unserve(&tag);
                }
                for tag in renewal.surplus {
                    self.unserve(&tag);
                }
                if renewal.freed > 0 && !self.inner.runtime.waiting().is_empty() {
                    self.take_waiting(&cluster);
                    self.inner
                        .runtime
                        .retry_waiting
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                // The next holder hands on from the marks: every one moved goes first.
                if !renewal.release.is_empty() {
                    cluster.write_marks();
                }
                for tag in renewal.release {
                    if let Err(e) = cluster.leases.release(&tag) {
                        tracing::warn!(workspace = %tag, error = %e, "cannot give the lease up; it expires instead");
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the leases");
                for tag in cluster.leases.expire_if_silent() {
                    self.unserve(&tag);
                }
            }
        }
        if let Err(e) = cluster.sweep_sessions() {
            tracing::debug!(error = %e, "cannot sweep the expired sessions");
        }
        self.metrics().leases_held.set(cluster.leases.held() as i64);
        self.inner.commit.outbox.adopt();
        self.cx().catch_up_away();
    }

    /// Takes the leases of the waiting workspaces that are free now in one go (a takeover
    /// frees a whole share at once); their loads, which follow, find them held. A failure
    /// leaves each to be taken by its own load.
    fn take_waiting(&self, cluster: &crate::cluster::Cluster) {
        let tags: Vec<String> = self
            .inner
            .runtime
            .waiting()
            .values()
            .map(crate::store::tag)
            .collect();
        if let Err(e) = cluster.leases.acquire_all(&tags) {
            tracing::warn!(error = %e, "cannot take the freed leases at once; taking them one by one");
        }
    }

    /// In a cluster: listens for the other nodes' wake-ups (`crate::cluster::wake`), so a
    /// reviewer marked away on another node has what this node assigned them moved on at once.
    pub fn start_wakeups(&self) {
        let Some(cluster) = self.inner.cluster.clone() else {
            return;
        };
        let app = self.clone();
        let woken = move |name: String| {
            if app.inner.common.away.is_away(&name) {
                app.cx().move_on_from(&name);
            }
        };
        if let Err(e) = cluster.listen(crate::cluster::wake::AWAY, woken) {
            tracing::warn!(error = %e, "cannot start listening for the other nodes' wake-ups; the lease rounds catch up instead");
        }
    }

    /// Stops serving the workspace of `tag` on this node: it leaves the lists and the key
    /// index, and waits with the others another daemon serves, to be taken again if its lease
    /// comes back to this node.
    pub(in crate::app) fn unserve(&self, tag: &str) {
        let served = {
            let mut all = self
                .inner
                .registry
                .workspaces
                .write()
                .expect("lock holders never panic");
            let name = all
                .iter()
                .find(|(_, s)| s.store.tag() == tag)
                .map(|(name, _)| name.clone());
            let Some(served) = name.and_then(|n| all.remove(&n)) else {
                return;
            };
            self.metrics().workspaces.set(all.len() as i64);
            served
        };
        let ws = served.workspace.clone();
        self.disown(&ws);
        self.inner.common.rota.forget_workspace(&ws.name);
        self.inner
            .registry
            .by_root
            .write()
            .expect("lock holders never panic")
            .remove(&ws.root);
        let pending = {
            let st = served.lock();
            let mut keys = self.keys();
            for key in st.records.keys() {
                if keys.get(key) == Some(&ws.name) {
                    keys.remove(key);
                    // Out of the list's and the queue's order at their next read.
                    self.inner.views.order.changed(key);
                }
            }
            st.records.values().filter(|r| r.is_pending()).count()
        };
        self.metrics().pending.dec_by(pending as i64);
        self.inner.views.listings.changed();
        self.inner
            .runtime
            .waiting()
            .insert(ws.root.clone(), ws.clone());
        tracing::info!(workspace = %ws.name, "no longer served by this node");
    }

    /// This node's place in the cluster, if it is in one.
    pub fn cluster(&self) -> Option<&std::sync::Arc<crate::cluster::Cluster>> {
        self.inner.cluster.as_ref()
    }
}

/// What a request is about, for finding the node that serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Handoff(String),
    Workspace(String),
}

impl App {
    /// Which node answers a request about `scope`: here when this node serves it (or there is
    /// no cluster), else the holder of its lease as the database says now.
    pub fn holder_of(
        &self,
        scope: &Scope,
    ) -> Result<crate::cluster::Holder, crate::cluster::ClusterError> {
        use crate::cluster::Holder;
        let Some(cluster) = self.inner.cluster.as_ref() else {
            return Ok(Holder::Here);
        };
        let holder = match scope {
            Scope::Handoff(key) if self.ws_of_key(key).is_some() => return Ok(Holder::Here),
            // A record of a workspace served here, left out of it as damaged: answered here,
            // where the refusal names the damage and what to do (its lease is this node's, so
            // the database would say "here, not served": "the node stopped answering").
            Scope::Handoff(key) if self.cx().read_only(key).is_some() => return Ok(Holder::Here),
            Scope::Workspace(name) if self.workspace(name).is_some() => return Ok(Holder::Here),
            Scope::Handoff(key) => match self.canary_holder(cluster, key)? {
                // A canary is served by the node whose place holds it, which no lease names.
                Some(holder) => return Ok(holder),
                None => cluster.holder_of_key(key)?,
            },
            Scope::Workspace(name) => cluster.holder_of_workspace(name)?,
        };
        // A handoff of a workspace this node holds but refused to serve, its folder replaced
        // (see `takeover`), is answered here: gone (410), naming why.
        if holder == Holder::Here {
            if let Scope::Handoff(key) = scope {
                let lost = self.inner.registry.lost.lock();
                if lost.unwrap_or_else(|e| e.into_inner()).contains_key(key) {
                    return Ok(Holder::Here);
                }
            }
        }
        // This node holds the lease but does not serve the workspace: it is giving it up to
        // the node it prefers (this round), or still loading it. Neither is a 404: try again.
        Ok(match holder {
            Holder::Here => Holder::Unserved,
            other => other,
        })
    }

    /// The other live nodes, to ask when an answer covers every workspace (none outside a
    /// cluster).
    pub fn peers(&self) -> Result<Vec<crate::cluster::Peer>, crate::cluster::ClusterError> {
        match self.inner.cluster.as_ref() {
            Some(cluster) => cluster.peers(),
            None => Ok(Vec::new()),
        }
    }
}
