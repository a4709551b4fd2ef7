//! `baton policy replay`: a candidate configuration's route policies evaluated against the
//! recorded handoffs and what people decided of them, read from the store like `export` (no
//! write, daemon running or not). What a team reads before it lets a policy decide.

use crate::app::model::{DECISION, META};
use crate::app::review::records::Committed;
use crate::app::runtime::load::read_store;
use crate::config::Config;
use crate::contract::{validate, Decision, Handoff, Limits};
use crate::policy::Facts;
use crate::store::Store;
use crate::workspace::{self, Workspace};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One route's agreement table: (would the policy approve?, what the person answered) -> how
/// many; and the handoffs where the policy would have approved what a person did not.
#[derive(Debug, Default)]
pub struct RouteReplay {
    pub counts: BTreeMap<(bool, String), usize>,
    pub disagreements: Vec<String>,
}

/// Replays `config`'s policies over the human decisions made at or after `since` (RFC 3339).
pub fn replay(config: &Config, since: &str) -> anyhow::Result<BTreeMap<String, RouteReplay>> {
    let found = workspace::discover(&config.workspaces)?;
    let mut out: BTreeMap<String, RouteReplay> = BTreeMap::new();
    let records = crate::cluster::records_of(config)?;
    for ws in &found.workspaces {
        let store = Store::for_workspace(&records, ws);
        let checkpoints = checkpoints_of(ws, &config.limits);
        for dir in store.record_dirs().unwrap_or_default() {
            let Some((handoff, route_name, facts, d)) =
                recorded(&store, &ws.name, &dir, &checkpoints)
            else {
                continue;
            };
            let human = d.policy.as_deref().is_none_or(|p| p == "human")
                && d.by != "system"
                && !d.by.starts_with("policy:");
            if !human || d.at.as_str() < since {
                continue;
            }
            let routes = &config.routes;
            // The route it was filed on, if the candidate has it; else where the candidate
            // would file it.
            let recorded = routes.iter().find(|r| Some(&r.name) == route_name.as_ref());
            let route = recorded.or_else(|| crate::routing::route_for(routes, &handoff, &ws.name));
            let Some(route) = route else { continue };
            let Some((_, would)) =
                crate::app::review::policy::verdict(routes, route, &handoff, &facts)
            else {
                continue;
            };
            let entry = out.entry(route.name.clone()).or_default();
            let answer = d.outcome.as_str().to_string();
            *entry.counts.entry((would, answer.clone())).or_default() += 1;
            if would && answer != "approved" {
                entry.disagreements.push(format!(
                    "{} ({}): the policy would approve; {} answered {answer}",
                    d.handoff_key, ws.name, d.by
                ));
            }
        }
    }
    Ok(out)
}

/// A decided record: its handoff, recorded route, facts (artifact sizes as received, the
/// checkpoints its task had then) and decision.
fn recorded(
    store: &Store,
    ws: &str,
    dir: &str,
    checkpoints: &[TaskCheckpoint],
) -> Option<(Handoff, Option<String>, Facts, Decision)> {
    let at = |file: &str| Path::new("handoffs").join(dir).join(file);
    let committed: Committed = read_store(store, &at(META))?;
    let decision: Decision = read_store(store, &at(DECISION))?;
    let handoff: Handoff = serde_json::from_str(committed.content.as_deref()?).ok()?;
    let meta = committed.meta;
    let artifacts = crate::app::review::policy::artifact_facts(&meta.artifacts);
    let had = checkpoints_before(checkpoints, &meta.task_id, &meta.updated_at);
    let facts = Facts::of(&handoff, ws, artifacts, had);
    let route = meta.route.and_then(|r| r.route);
    Some((handoff, route, facts, decision))
}

/// A valid checkpoint in a workspace: its task, and when its file was last written.
struct TaskCheckpoint {
    task_id: String,
    written: SystemTime,
}

/// The workspace's valid checkpoints, read as the daemon reads them (confined to the
/// workspace, under the configured limits). The store keeps no list of them: the
/// daemon counts the files present when a handoff arrives, so replay counts those written
/// by then.
fn checkpoints_of(ws: &Workspace, limits: &Limits) -> Vec<TaskCheckpoint> {
    let dir = ws.checkpoints_dir();
    let read = |name: String| {
        let path = dir.join(name);
        let meta = std::fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file())?;
        let bytes = ws.read(&path, limits.max_bytes).ok()??;
        let accepted = validate::checkpoint(&bytes, limits).ok()?;
        Some(TaskCheckpoint {
            task_id: accepted.doc.task_id,
            written: meta.modified().ok()?,
        })
    };
    ws.list_json_in(&dir).into_iter().filter_map(read).collect()
}

/// How many of `task_id`'s checkpoints were written by `at` (RFC 3339: when the decided
/// revision was received); all of them when `at` does not parse.
fn checkpoints_before(checkpoints: &[TaskCheckpoint], task_id: &str, at: &str) -> u64 {
    // Receipt times are kept to the millisecond; a file's time is finer.
    let at = OffsetDateTime::parse(at, &Rfc3339)
        .ok()
        .map(|t| SystemTime::from(t) + std::time::Duration::from_millis(1));
    checkpoints
        .iter()
        .filter(|c| c.task_id == task_id)
        .filter(|c| at.is_none_or(|at| c.written <= at))
        .count() as u64
}
