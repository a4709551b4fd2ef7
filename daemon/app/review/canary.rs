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

/// Catches by reviewer, kept in data_dir (`canaries/tally.json`), and how many handoffs each
/// workspace received since its last canary (the rate; not kept: a restart starts it over).
pub(in crate::app) struct CanaryTally {
    path: PathBuf,
    by_reviewer: Mutex<BTreeMap<String, Catches>>,
    since_last: Mutex<BTreeMap<String, u32>>,
    filed: std::sync::atomic::AtomicUsize,
}

impl CanaryTally {
    pub fn open(data_dir: &Path) -> CanaryTally {
        let path = data_dir.join("canaries").join("tally.json");
        let kept = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        CanaryTally {
            path,
            by_reviewer: Mutex::new(kept),
            since_last: Mutex::default(),
            filed: Default::default(),
        }
    }

    pub fn by_reviewer(&self) -> BTreeMap<String, Catches> {
        self.by_reviewer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn count(&self, reviewer: &str, caught: bool) -> io::Result<()> {
        let mut all = self.by_reviewer.lock().unwrap_or_else(|e| e.into_inner());
        let entry = all.entry(reviewer.to_string()).or_default();
        match caught {
            true => entry.caught += 1,
            false => entry.missed += 1,
        }
        let bytes = serde_json::to_vec_pretty(&*all)?;
        std::fs::create_dir_all(self.path.parent().unwrap_or(Path::new(".")))?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, &self.path)
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
            if let Err(e) = self.common.canaries.count(&reviewer, caught) {
                tracing::warn!(error = %e, "cannot keep the canary tally; counted in memory only");
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
