//! Read-only views for the workspace and events pages: a workspace's files, handoffs and
//! progress; the newest audit events; each audit log's verdict. Nothing here changes state.

use crate::app::{App, CheckpointRecord};
use crate::auth::Actor;
use crate::contract::Problem;
use crate::workspace::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::SystemTime;

/// One handoff of a workspace's history.
pub struct HandoffLine {
    pub key: String,
    pub title: String,
    pub revision: u32,
    pub received_at: String,
    /// `pending`, or the outcome.
    pub outcome: String,
    pub by: Option<String>,
    pub decided_at: Option<String>,
}

pub struct Files {
    pub entries: Vec<Entry>,
    /// More entries exist than were listed.
    pub more: bool,
    /// Why the folder could not be listed, if it could not.
    pub error: Option<String>,
}

pub struct WorkspaceOverview {
    pub name: String,
    pub root: String,
    pub pending: Option<String>,
    pub stalled: bool,
    /// Newest first.
    pub handoffs: Vec<HandoffLine>,
    /// The newest checkpoint of each task.
    pub progress: Vec<CheckpointRecord>,
    pub checkpoint_errors: BTreeMap<String, Vec<Problem>>,
    pub inbox: Files,
    pub approved: Files,
    /// The advisory locks in force, by path.
    pub locks: Vec<crate::locks::Lock>,
    pub owner: Option<crate::app::Ownership>,
    /// The `invalid` answer to the handoff.json in place, when it is not a valid handoff.
    pub invalid: Option<crate::contract::Decision>,
}

/// An audit log's state as `baton audit verify` would report it.
#[derive(Clone)]
pub struct Verdict {
    pub workspace: String,
    pub events: u64,
    pub problems: usize,
    pub anchored: bool,
}

/// Verdicts by workspace, with the log's (length, modified time) they were computed for: a
/// log is read again only once it changed.
pub(in crate::app) type VerdictMap = HashMap<String, ((u64, Option<SystemTime>), Verdict)>;
pub(in crate::app) type VerdictCache = Mutex<VerdictMap>;

impl App {
    pub fn workspace_overview(&self, name: &str, actor: &Actor) -> Option<WorkspaceOverview> {
        if !actor.can_see(name) {
            return None;
        }
        let ws = self.workspace(name)?;
        let files = |dir: std::path::PathBuf| match ws.workspace.tree(&dir) {
            Ok((entries, more)) => Files {
                entries,
                more,
                error: None,
            },
            Err(e) => Files {
                entries: Vec::new(),
                more: false,
                error: Some(e.to_string()),
            },
        };
        let inbox = files(ws.workspace.inbox_dir());
        let approved = files(ws.workspace.root.join("approved"));
        let st = ws.lock();
        let mut handoffs: Vec<HandoffLine> = st
            .records
            .values()
            .map(|r| HandoffLine {
                key: r.meta.key.clone(),
                title: r.head().title.unwrap_or_else(|| r.meta.task_id.clone()),
                revision: r.meta.revision,
                received_at: r.meta.received_at.clone(),
                outcome: r
                    .decision
                    .as_ref()
                    .map_or("pending", |d| d.outcome.as_str())
                    .into(),
                by: r.decision.as_ref().map(|d| d.by.to_string()),
                decided_at: r.decision.as_ref().map(|d| d.at.to_string()),
            })
            .collect();
        handoffs.sort_by(|a, b| b.received_at.cmp(&a.received_at));
        let locks = self.cx().locks_of(&ws);
        let mut newest: BTreeMap<&str, &CheckpointRecord> = BTreeMap::new();
        for c in st.checkpoints.values() {
            let slot = newest.entry(&c.task_id).or_insert(c);
            if c.step > slot.step {
                *slot = c;
            }
        }
        Some(WorkspaceOverview {
            name: name.to_string(),
            root: ws.workspace.root.display().to_string(),
            pending: st.pending.clone(),
            stalled: ws.stalled.load(std::sync::atomic::Ordering::Relaxed),
            progress: newest.into_values().cloned().collect(),
            checkpoint_errors: st.checkpoint_errors.clone(),
            handoffs,
            inbox,
            approved,
            locks,
            owner: self.cx().owner_of(name),
            invalid: st
                .current
                .as_ref()
                .and_then(|c| c.invalid.as_deref().cloned()),
        })
    }

    /// What the events page says of the audit logs the actor may see: how many there are,
    /// and those with tampering not yet acknowledged (by workspace). Read from the daemon's
    /// own findings, not from the logs, so it costs nothing per workspace: a log edited
    /// between two appends is found at the next check (each reconcile) or append.
    pub fn audit_summary(&self, actor: &Actor) -> (usize, BTreeMap<String, Vec<String>>) {
        let all = self
            .inner
            .registry
            .workspaces
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let logs = match actor {
            Actor::Reviewer { .. } => all.len(),
            Actor::Agent { .. } => all.keys().filter(|w| actor.can_see(w)).count(),
        };
        drop(all);
        let mut alerts = self.alerts();
        alerts.retain(|w, _| actor.can_see(w));
        (logs, alerts)
    }

    /// The audit verdict of one workspace's log, as `baton audit verify` gives it (read
    /// through only when the log changed since the last look).
    pub fn audit_verdict(&self, actor: &Actor, workspace: &str) -> Option<Verdict> {
        if !actor.can_see(workspace) {
            return None;
        }
        let ws = self.workspace(workspace)?;
        let name = ws.workspace.name.clone();
        let path = ws.workspace.events_path();
        let stamp = std::fs::symlink_metadata(&path)
            .map(|m| (m.len(), m.modified().ok()))
            .unwrap_or((0, None));
        let cached = self.inner.views.verdicts().get(&name).cloned();
        if let Some((_, v)) = cached.filter(|(s, _)| *s == stamp) {
            return Some(v);
        }
        let verdict = match crate::audit::verify(&path, Some(&ws.anchors)) {
            Ok(r) => Verdict {
                workspace: name.clone(),
                events: r.lines,
                problems: r.problems.len(),
                anchored: r.anchored.is_some(),
            },
            Err(_) => Verdict {
                workspace: name.clone(),
                events: 0,
                problems: 1,
                anchored: false,
            },
        };
        self.inner
            .views
            .verdicts()
            .insert(name, (stamp, verdict.clone()));
        Some(verdict)
    }
}

/// A workspace whose `handoff.json` in place is not a valid handoff, and why.
pub struct InvalidHandoff {
    pub workspace: String,
    pub decision: crate::contract::Decision,
}

impl App {
    /// Every workspace the actor may see whose current handoff.json was answered `invalid`.
    pub fn invalid_handoffs(&self, actor: &Actor) -> Vec<InvalidHandoff> {
        let mut out = Vec::new();
        // Only where one was answered (not every workspace: the queue asks on each view).
        let names: Vec<String> = {
            let invalid_in = self.inner.views.invalid_in.lock();
            invalid_in
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect()
        };
        let mut gone = Vec::new();
        for name in names {
            let Some(ws) = self.workspace(&name) else {
                gone.push(name);
                continue;
            };
            let invalid = ws
                .lock()
                .current
                .as_ref()
                .and_then(|c| c.invalid.as_deref().cloned());
            match invalid {
                Some(d) if actor.can_see(&name) => out.push(InvalidHandoff {
                    workspace: name,
                    decision: d,
                }),
                Some(_) => {}
                None => gone.push(name),
            }
        }
        for name in gone {
            // Under the workspace's lock, as `answer_invalid` adds (the same lock order), so
            // an answer given since the read above is not lost.
            let ws = self.workspace(&name);
            let st = ws.as_ref().map(|ws| ws.lock());
            let again = st.as_ref().is_some_and(|st| {
                let current = st.current.as_ref();
                current.is_some_and(|c| c.invalid.is_some())
            });
            if !again {
                let mut invalid_in = self.inner.views.invalid_in();
                invalid_in.remove(&name);
            }
            drop(st);
        }
        out
    }
}
