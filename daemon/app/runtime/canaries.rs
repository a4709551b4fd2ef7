//! Canary places kept going: opened at start (those holding records from before), made when
//! a workspace's first canary is due, and the rate: one canary for every `every` handoffs a
//! workspace receives (counted from the events subscribers hear, so a place's own events,
//! which no subscriber hears, never count). What a canary is and why it stays in the daemon:
//! `review::canary`.

use crate::app::review::canary::{place_name, CanaryMark, Catches, Filed};
use crate::app::{App, Served};
use crate::contract::Outcome;
use crate::events::EventType;
use crate::workspace::Workspace;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

impl App {
    /// Where the places live: data_dir/canaries/places/<workspace name>.
    fn places_dir(&self) -> PathBuf {
        self.config().data_dir.join("canaries").join("places")
    }

    /// Opens the places made before, then files canaries at the configured rate as
    /// handoffs are received. Without `[canaries]`, places made before are still opened:
    /// their pending canaries stay decidable and their tally counted.
    pub fn start_canaries(&self) {
        if let Ok(dirs) = std::fs::read_dir(self.places_dir()) {
            for dir in dirs.flatten() {
                let name = dir.file_name().to_string_lossy().into_owned();
                if let Err(e) = self.canary_place(&name) {
                    tracing::error!(workspace = %name, error = %e, "cannot open a canary place; its canaries are not served");
                }
            }
        }
        let Some(canaries) = self.config().canaries.clone() else {
            return;
        };
        // In a cluster a node hears only the events of the workspaces it serves: each due
        // canary is counted, and filed, by the holder of that workspace's lease alone.
        let mut events = self.subscribe();
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let due = event.kind == EventType::HandoffReceived
                    && canaries.goes_to(&event.workspace)
                    && app.cx().canary_due(&event.workspace, canaries.every);
                if !due {
                    continue;
                }
                let app = app.clone();
                let _ =
                    tokio::task::spawn_blocking(move || app.file_canary(&event.workspace)).await;
            }
        });
    }

    /// Files the next example into workspace `name`'s place. Returns the canary's key, or
    /// `None` when none was filed (no `[canaries]`, or a canary still pending there).
    pub fn file_canary(&self, name: &str) -> Option<String> {
        let canaries = self.config().canaries.as_ref()?;
        // Only the node serving the workspace files its canaries (its lease moved away
        // since the handoff that made one due: the new holder counts its own).
        if self.inner.cluster.is_some() && self.workspace(name).is_none() {
            tracing::info!(workspace = %name, "no canary filed: this node no longer serves the workspace");
            return None;
        }
        let example = &canaries.examples[self
            .inner
            .common
            .canaries
            .next_example(canaries.examples.len())];
        let filed = self
            .canary_place(name)
            .and_then(|place| Ok(self.cx().file_canary(&place, example)?));
        match filed {
            Ok(Some(key)) => {
                self.note_filed(name, &key, &example.name);
                Some(key)
            }
            Ok(None) => None,
            Err(e) => {
                self.metrics().error("canary");
                tracing::error!(workspace = %name, example = %example.name, error = %e, "cannot file a canary");
                None
            }
        }
    }

    /// What canary `key` was planted for and how it was decided, once it is (`None` for any
    /// other handoff, and for a canary still pending: nothing tells it apart before then).
    pub fn canary_decided(&self, key: &str) -> Option<(CanaryMark, Outcome)> {
        let mark = self.cx().canary_of(key)?;
        let ws = self.ws_of_key(key)?;
        let outcome = ws.lock().records.get(key)?.decision.as_ref()?.outcome;
        Some((mark, outcome))
    }

    /// Records canary `key` of workspace `name` among those filed, with this node's name,
    /// so that other nodes send requests about it here.
    fn note_filed(&self, name: &str, key: &str, example: &str) {
        let filed = Filed {
            workspace: name.to_string(),
            node: self
                .inner
                .cluster
                .as_ref()
                .map_or(String::new(), |c| c.node.clone()),
            example: example.to_string(),
            filed_at: crate::clock::now_rfc3339(),
        };
        let common = &self.inner.common;
        if let Err(e) = common
            .canaries
            .note_filed(common.documents.as_ref(), key, &filed)
        {
            // Only other nodes need the record; here the canary is served all the same.
            self.metrics().error("canary");
            tracing::error!(key, error = %e, "cannot record the canary among those filed; other nodes of a cluster cannot send requests about it here");
        }
    }

    /// In a cluster, the node whose place holds canary `key` when it is another's (None:
    /// not a canary, or this node's): `Unserved` while that node is not live.
    pub(in crate::app) fn canary_holder(
        &self,
        cluster: &crate::cluster::Cluster,
        key: &str,
    ) -> Result<Option<crate::cluster::Holder>, crate::cluster::ClusterError> {
        let common = &self.inner.common;
        let Some(filed) = common.canaries.filed(common.documents.as_ref(), key) else {
            return Ok(None);
        };
        if filed.node == cluster.node {
            return Ok(None);
        }
        let peer = cluster.peers()?.into_iter().find(|p| p.node == filed.node);
        Ok(Some(match peer {
            Some(p) => crate::cluster::Holder::Peer(p),
            None => crate::cluster::Holder::Unserved,
        }))
    }

    /// Canaries caught and missed, by reviewer: the same on every node of a cluster.
    pub fn canary_catches(&self) -> BTreeMap<String, Catches> {
        let common = &self.inner.common;
        common.canaries.by_reviewer(common.documents.as_ref())
    }

    /// The place standing in for workspace `name`, opened (and made) when first asked.
    fn canary_place(&self, name: &str) -> anyhow::Result<Arc<Served>> {
        let registry_name = place_name(name);
        if let Some(place) = self.inner.registry.place(&registry_name) {
            return Ok(place);
        }
        let root = self.places_dir().join(name);
        std::fs::create_dir_all(root.join(crate::workspace::BATON_DIR))?;
        let ws = Workspace {
            name: name.to_string(),
            ..Workspace::open(&root)?
        };
        // A cluster's records are written under a workspace's lease, which a place has not:
        // its records are this node's files, as its folder is.
        let records = match self.inner.cluster {
            Some(_) => self.inner.common.canaries.local_records(),
            None => self.inner.commit.records.clone(),
        };
        let loaded = crate::app::runtime::load::load(
            &ws,
            &self.inner.config.data_dir,
            &self.inner.commit.ledger,
            &records,
            None,
            &self.inner.runtime.copies,
        )?;
        let place = Arc::new(Served {
            place: Some(registry_name),
            ..loaded.ws
        });
        self.cx().respool(&place);
        {
            let st = place.lock();
            for rec in st.records.values() {
                self.cx().note_claim(&ws.name, rec);
            }
            let pending = st.records.values().filter(|r| r.is_pending()).count();
            self.metrics().pending.inc_by(pending as i64);
        }
        self.inner.registry.insert_place(place.clone());
        self.file_records(&place);
        tracing::info!(workspace = %name, root = %root.display(), "canary place opened");
        Ok(place)
    }
}
