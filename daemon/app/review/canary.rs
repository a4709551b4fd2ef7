//! Canaries: known-bad example handoffs (`config::canaries`) filed into reviewers' queues, to
//! learn whether they read what they approve. A canary lives in a *canary place*: a
//! daemon-owned folder in data_dir, served like a workspace under the name of the workspace it
//! stands in for (so its page and queue line are like any other), but known to the registry
//! under its own name and never listed with the workspaces. That placement is what keeps a
//! canary in the daemon, by construction rather than by filters:
//!
//! - its files (handoff.json, artifacts, decision.json, published copies, approved copies,
//!   the audit log) are written under the place's root, in data_dir, never in a workspace;
//! - its events go to the place's own audit log, which takes no way to the outbox
//!   (`Commit::log` and `respool` spool nothing for a place) and tells no subscriber
//!   (`announce`), so no webhook, mail, chat, push or A2A update is made of them;
//! - agents' tokens do not see it (`Served::seen_by`).
//!
//! A canary is decided through the one decision path (`Cx::decide_via`) like any other; when
//! its `handoff.decided` event is logged in its place, the verdict follows: rejected or sent
//! back is caught, approved is missed (`canary.caught`, `canary.missed`, with `canary: true`
//! on every event of a place), counted per reviewer in `CanaryTally` and the metrics.

use crate::app::review::Cx;
use crate::app::Served;
use crate::config::canaries::Example;
use crate::contract::Outcome;
use crate::documents::Documents;
use crate::events::{Event, EventType};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The store file marking a record as a canary, with what is wrong with it.
pub(in crate::app) const CANARY: &str = "canary.json";

/// What the store keeps of a canary beside its record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CanaryMark {
    /// The example's folder name.
    pub example: String,
    /// What is wrong with it (`canary.toml`'s `why`), as it was when filed.
    pub why: String,
    pub filed_at: String,
}

/// The registry name of the canary place standing in for workspace `name`. A workspace's
/// name is a folder's name, which holds no `/`, so no workspace can be called this.
pub fn place_name(name: &str) -> String {
    format!("{name}/canary")
}

/// A reviewer's record with canaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catches {
    pub caught: u64,
    pub missed: u64,
}

impl Catches {
    /// The share caught, when any was decided.
    pub fn rate(&self) -> Option<f64> {
        let all = self.caught + self.missed;
        (all > 0).then(|| self.caught as f64 / all as f64)
    }
}

/// The document of catches by reviewer (`crate::documents`): one daemon's file
/// `data_dir/canaries/tally.json`, a cluster's row, so the catch rate is the same on every
/// node whichever filed and judged the canary.
const TALLY: &str = "canaries/tally.json";

/// The document of the canaries filed, by key: which node's place holds each (a cluster's
/// other nodes send a request about it there), what it is. The newest `FILED_KEPT` are kept.
const FILED: &str = "canaries/filed.json";
const FILED_KEPT: usize = 1000;

/// A canary as every node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Filed {
    pub workspace: String,
    /// The node whose place holds it ("" for one daemon).
    pub node: String,
    pub example: String,
    pub filed_at: String,
}

/// Catches by reviewer and canaries filed (documents), and how many handoffs each workspace
/// received since its last canary (the rate; not kept: a restart starts it over).
pub(in crate::app) struct CanaryTally {
    data_dir: PathBuf,
    /// In a cluster, the records of this node's places: files in its own data_dir, as one
    /// daemon keeps them. A place is this node's alone (its folder is in data_dir), so its
    /// records are not the cluster's, whose writes need a workspace's lease.
    local: std::sync::OnceLock<crate::store::Records>,
    since_last: Mutex<BTreeMap<String, u32>>,
    filed: std::sync::atomic::AtomicUsize,
}

impl CanaryTally {
    pub fn open(data_dir: &Path) -> CanaryTally {
        CanaryTally {
            data_dir: data_dir.to_path_buf(),
            local: Default::default(),
            since_last: Mutex::default(),
            filed: Default::default(),
        }
    }

    /// The records of this node's places in a cluster.
    pub fn local_records(&self) -> crate::store::Records {
        self.local
            .get_or_init(|| crate::store::in_data_dir(&self.data_dir))
            .clone()
    }

    /// Catches by reviewer, as the document says now (none while it cannot be read, logged).
    pub fn by_reviewer(&self, docs: &dyn Documents) -> BTreeMap<String, Catches> {
        read_doc(docs, TALLY)
    }

    fn count(&self, docs: &dyn Documents, reviewer: &str, caught: bool) -> io::Result<()> {
        docs.change(TALLY, &mut |bytes| {
            let mut all: BTreeMap<String, Catches> = parse_doc(bytes, TALLY)?;
            let entry = all.entry(reviewer.to_string()).or_default();
            match caught {
                true => entry.caught += 1,
                false => entry.missed += 1,
            }
            Ok(Some(serde_json::to_vec_pretty(&all)?))
        })
    }

    /// Records canary `key` as filed (the newest `FILED_KEPT` are kept).
    pub fn note_filed(&self, docs: &dyn Documents, key: &str, filed: &Filed) -> io::Result<()> {
        docs.change(FILED, &mut |bytes| {
            let mut all: BTreeMap<String, Filed> = parse_doc(bytes, FILED)?;
            all.insert(key.to_string(), filed.clone());
            while all.len() > FILED_KEPT {
                let oldest = all
                    .iter()
                    .min_by(|a, b| a.1.filed_at.cmp(&b.1.filed_at))
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => all.remove(&k),
                    None => break,
                };
            }
            Ok(Some(serde_json::to_vec_pretty(&all)?))
        })
    }

    /// Canary `key` as filed, if it is one (of any node).
    pub fn filed(&self, docs: &dyn Documents, key: &str) -> Option<Filed> {
        read_doc::<BTreeMap<String, Filed>>(docs, FILED).remove(key)
    }

    /// Counts a handoff received in `workspace`; `true` when a canary is due there (one in
    /// every `every`).
    pub fn received(&self, workspace: &str, every: u32) -> bool {
        let mut since = self.since_last.lock().unwrap_or_else(|e| e.into_inner());
        let n = since.entry(workspace.to_string()).or_default();
        *n += 1;
        if *n >= every {
            *n = 0;
            return true;
        }
        false
    }

    /// The next example's index (round robin over `count`).
    pub fn next_example(&self, count: usize) -> usize {
        self.filed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % count.max(1)
    }
}

/// Document `name` read as a `T`; the default when there is none or it cannot be read
/// (logged: a tally or a list of canaries is not worth refusing a page over).
fn read_doc<T: Default + serde::de::DeserializeOwned>(docs: &dyn Documents, name: &str) -> T {
    match docs.read(name).and_then(|b| parse_doc(b.as_deref(), name)) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(document = %docs.place(name), error = %e, "cannot read the canaries' document");
            T::default()
        }
    }
}

/// A document's bytes as a `T` (the default when there are none); one that is not such is
/// damaged, never read as empty and saved over.
fn parse_doc<T: Default + serde::de::DeserializeOwned>(
    bytes: Option<&[u8]>,
    name: &str,
) -> io::Result<T> {
    match bytes {
        None => Ok(T::default()),
        Some(b) => serde_json::from_slice(b).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{name} is damaged ({e}); mend it or move it aside"),
            )
        }),
    }
}

/// A decision logged in a place, owed its verdict once announced.
pub(in crate::app) struct Owed {
    key: String,
    reviewer: String,
    outcome: Outcome,
}

impl Cx<'_> {
    /// Every event of a canary place says so (`canary: true`); others pass as they are.
    pub(in crate::app) fn mark_canaries(&self, ws: &Served, mut events: Vec<Event>) -> Vec<Event> {
        if ws.place.is_some() {
            for event in &mut events {
                if let Value::Object(data) = &mut event.data {
                    data.insert("canary".into(), Value::Bool(true));
                }
            }
        }
        events
    }

    /// The people's decisions among a place's logged events (a policy's, a timeout's or the
    /// system's judge no reviewer).
    pub(in crate::app) fn canary_verdicts_owed(&self, ws: &Served, events: &[Event]) -> Vec<Owed> {
        if ws.place.is_none() {
            return Vec::new();
        }
        events
            .iter()
            .filter(|e| e.kind == EventType::HandoffDecided && e.data.get("via").is_some())
            .filter_map(|e| {
                let outcome = serde_json::from_value(e.data.get("outcome")?.clone()).ok()?;
                Some(Owed {
                    key: e.key.clone()?,
                    reviewer: e.data.get("by")?.as_str()?.to_string(),
                    outcome,
                })
            })
            .collect()
    }

    /// Records the verdict of each canary decided: caught (rejected, sent back) or missed
    /// (approved). A reassignment or withdrawal judges nobody.
    pub(in crate::app) fn judge_canaries(&self, ws: &Served, owed: Vec<Owed>) {
        for Owed {
            key,
            reviewer,
            outcome,
        } in owed
        {
            let caught = match outcome {
                Outcome::Approved => false,
                Outcome::Rejected | Outcome::ChangesRequested => true,
                _ => continue,
            };
            let mark = canary_mark(ws, &key);
            let (kind, verdict) = match caught {
                true => (EventType::CanaryCaught, "caught"),
                false => (EventType::CanaryMissed, "missed"),
            };
            let mut data = json!({"reviewer": reviewer, "outcome": outcome});
            if let Some(mark) = &mark {
                data["example"] = mark.example.clone().into();
                data["why"] = mark.why.clone().into();
            }
            let docs = self.common.documents.as_ref();
            if let Err(e) = self.common.canaries.count(docs, &reviewer, caught) {
                self.metrics().error("canary");
                tracing::error!(error = %e, reviewer, verdict = caught, "cannot count a canary's verdict in the tally; the metrics and the event have it");
            }
            let label = crate::metrics::ReviewerLabel {
                reviewer: reviewer.clone(),
            };
            match caught {
                true => self.metrics().canaries_caught.get_or_create(&label).inc(),
                false => self.metrics().canaries_missed.get_or_create(&label).inc(),
            };
            tracing::info!(workspace = %ws.workspace.name, key, reviewer, verdict,
                example = mark.as_ref().map_or("", |m| m.example.as_str()), "canary decided");
            let event = Event::new(kind, &ws.workspace.name, Some(&key), data);
            if let Err(e) = self.emit(ws, event) {
                tracing::error!(key, error = %e, "cannot log a canary's verdict");
            }
        }
    }

    /// Files `example` into `place`: its artifacts and handoff.json written under the place's
    /// root, received like any handoff, marked in the store. Returns its key, or `None` when
    /// the place still holds a pending canary (one at a time, so none is superseded unseen).
    pub(in crate::app) fn file_canary(
        &self,
        place: &Served,
        example: &Example,
    ) -> io::Result<Option<String>> {
        if place.lock().records.values().any(|r| r.is_pending()) {
            return Ok(None);
        }
        let ws = &place.workspace;
        for path in &example.artifacts {
            let bytes = std::fs::read(example.folder.join(path))?;
            let to = ws.root.join(path);
            if let Some(dir) = to.parent() {
                ws.make_dirs(dir)?;
            }
            ws.write_volatile(&to, &bytes)?;
        }
        let doc = fresh_task(&std::fs::read(example.folder.join("handoff.json"))?)?;
        ws.write_volatile(&ws.handoff_path(), &serde_json::to_vec_pretty(&doc)?)?;
        if !self.reconcile_handoff(place, None, true) {
            return Err(io::Error::other(
                "the canary's handoff could not be received",
            ));
        }
        let key = {
            let st = place.lock();
            let current = st.current.as_ref().map(|c| c.key.clone());
            current.filter(|k| st.records.get(k).is_some_and(|r| r.is_pending()))
        };
        let Some(key) = key else {
            return Err(io::Error::other(format!(
                "canary \"{}\" was not taken as a valid pending handoff",
                example.name
            )));
        };
        let mark = CanaryMark {
            example: example.name.clone(),
            why: example.why.clone(),
            filed_at: crate::clock::now_rfc3339(),
        };
        place.commit(&key, CANARY, &serde_json::to_vec_pretty(&mark)?)?;
        let data = json!({"example": example.name});
        self.emit(
            place,
            Event::new(EventType::CanaryFiled, &ws.name, Some(&key), data),
        )?;
        self.metrics().canaries_filed.inc();
        tracing::info!(workspace = %ws.name, key, example = %example.name, "canary filed");
        Ok(Some(key))
    }

    /// What the store keeps of canary `key`, if it is one.
    pub(in crate::app) fn canary_of(&self, key: &str) -> Option<CanaryMark> {
        let ws = self.ws_of_key(key)?;
        ws.place.as_ref()?;
        canary_mark(&ws, key)
    }

    /// Counts a handoff received in a workspace canaries go to; `true` when one is due.
    pub(in crate::app) fn canary_due(&self, workspace: &str, every: u32) -> bool {
        self.common.canaries.received(workspace, every)
    }
}

fn canary_mark(ws: &Served, key: &str) -> Option<CanaryMark> {
    let path = crate::store::Store::record(key, CANARY);
    let bytes = ws.store.read(&path).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// The example's handoff as this filing's own: its `task_id` made unique (so each filing is
/// a handoff of its own, not a revision of the last), any `id` dropped (its key derived).
fn fresh_task(bytes: &[u8]) -> io::Result<Value> {
    let mut doc: Value = serde_json::from_slice(bytes)?;
    let salt = crate::contract::validate::sha256_hex(crate::clock::now_rfc3339().as_bytes());
    if let Value::Object(map) = &mut doc {
        map.remove("id");
        let task = map.get("task_id").and_then(Value::as_str).unwrap_or("task");
        let task = format!("{task}-{}", &salt[..6]);
        map.insert("task_id".into(), task.into());
    }
    Ok(doc)
}
