//! `baton policy replay`: a candidate configuration's route policies evaluated against the
//! recorded handoffs and what people decided of them, read from the store like `export` (no
//! write, daemon running or not). What a team reads before it lets a policy decide.

use crate::app::model::{DECISION, META};
use crate::app::review::records::{old_decision_file, rev_file, Committed};
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
/// many; the revisions where the policy would have approved what a person did not; those it
/// erred on (it decides nothing there, and replay fails); those it could not be tried on.
#[derive(Debug, Default)]
pub struct RouteReplay {
    pub counts: BTreeMap<(bool, String), usize>,
    pub disagreements: Vec<String>,
    pub errors: Vec<String>,
    pub unknown: Vec<String>,
}

/// Replays `config`'s policies over every revision a person decided at or after `since` (RFC
/// 3339): each handoff's last decision and those a later revision replaced (a revision sent
/// back with `changes_requested`, say). Canaries (known-bad examples filed into queues, kept in
/// data_dir's canary places) are no agent's work and are left out unless `canaries`: then
/// they are replayed too, each line saying `canary`, which shows whether the policy would
/// approve what is known to be bad.
pub fn replay(
    config: &Config,
    since: &str,
    canaries: bool,
) -> anyhow::Result<BTreeMap<String, RouteReplay>> {
    let found = workspace::discover(&config.workspaces)?;
    let mut out: BTreeMap<String, RouteReplay> = BTreeMap::new();
    let records = crate::cluster::records_of(config)?;
    let places = match canaries {
        true => super::export::canary_places(config),
        false => Vec::new(),
    };
    let real = found.workspaces.iter().map(|ws| (ws, false));
    for (ws, canary) in real.chain(places.iter().map(|ws| (ws, true))) {
        let store = Store::for_workspace(&records, ws);
        let checkpoints = checkpoints_of(ws, &config.limits);
        for dir in store.record_dirs().unwrap_or_default() {
            for r in decided(&store, &dir) {
                let Some(d) = r.decision.as_ref() else {
                    continue;
                };
                let human = d.policy.as_deref().is_none_or(|p| p == "human")
                    && d.by != "system"
                    && d.by != crate::app::review::timers::timeouts::BY
                    && !d.by.starts_with("policy:")
                    // A reviewer's grant decided it at receipt: nobody looked.
                    && !d.by.starts_with("grant:");
                if !human || d.at.as_str() < since {
                    continue;
                }
                let ws_name = match canary {
                    true => format!("{}, canary", ws.name),
                    false => ws.name.clone(),
                };
                replay_one(
                    config,
                    (ws.name.as_str(), ws_name.as_str()),
                    &checkpoints,
                    r,
                    &mut out,
                );
            }
        }
    }
    Ok(out)
}

/// One decided revision, replayed into `out`.
fn replay_one(
    config: &Config,
    (ws, shown): (&str, &str),
    checkpoints: &[TaskCheckpoint],
    r: Revision,
    out: &mut BTreeMap<String, RouteReplay>,
) {
    let routes = &config.routes;
    // The route it was filed on, if the candidate has it; else where the candidate would
    // file it.
    let recorded = routes.iter().find(|x| Some(&x.name) == r.route.as_ref());
    let route = recorded.or_else(|| crate::routing::route_for(routes, &r.handoff, ws));
    let Some(route) = route else { return };
    let Some(d) = &r.decision else { return };
    let entry = out.entry(route.name.clone()).or_default();
    let what = format!("{} ({shown}) revision {}", d.handoff_key, r.revision);
    let reads_artifacts = route
        .auto_approve_if
        .as_deref()
        .is_some_and(crate::policy::reads_artifacts);
    let sender = r.sender(&config.data_dir, ws);
    let artifacts = match r.artifacts {
        Some(a) => a,
        None if reads_artifacts => {
            entry.unknown.push(format!(
                "{what}: the store kept no sizes of its artifacts, which the policy reads"
            ));
            return;
        }
        None => Vec::new(),
    };
    let had = checkpoints_before(checkpoints, &r.task_id, &r.arrived);
    let shown_sender = match &sender {
        Some(s) => format!("sender {s}"),
        None => "sender unproven".to_string(),
    };
    let facts = Facts::of(&r.handoff, ws, &route.name, sender, artifacts, had);
    let Some(v) = crate::app::review::policy::verdict(routes, route, &r.handoff, &facts) else {
        return;
    };
    if let Some(e) = &v.error {
        entry.errors.push(format!("{what}: {e}"));
    }
    let would = v.approves;
    let answer = d.outcome.as_str().to_string();
    *entry.counts.entry((would, answer.clone())).or_default() += 1;
    if would && answer != "approved" {
        entry.disagreements.push(format!(
            "{} ({shown}): the policy would approve; {} answered {answer} (revision {}; \
             {shown_sender})",
            d.handoff_key, d.by, r.revision
        ));
    }
}

/// A revision of a record, with what its policy facts are made of and what people (or the
/// daemon) decided of it.
pub(in crate::app) struct Revision {
    pub key: String,
    pub revision: u32,
    pub handoff: Handoff,
    /// Its text as kept (its digest finds its proven sender).
    pub text: String,
    pub task_id: String,
    pub route: Option<String>,
    /// Its artifacts as received; None: the store did not keep them (revisions before the
    /// one before the last).
    pub artifacts: Option<Vec<crate::policy::ArtifactFact>>,
    /// When it arrived, or a time before which it did not (RFC 3339): for the checkpoints.
    pub arrived: String,
    /// When its record's first revision was received: which record it is (its sender's proof
    /// names it).
    pub record_at: String,
    /// None: the last revision, not decided (yet).
    pub decision: Option<Decision>,
}

impl Revision {
    /// The agent proven, at its receipt, to have sent this revision (`app::review::sender`):
    /// nobody when the store no longer keeps the artifacts it names (their bytes unknown).
    pub fn sender(&self, data_dir: &Path, ws: &str) -> Option<String> {
        let digest = validate::handoff_digest(self.text.as_bytes())?;
        let fingerprint = match &self.artifacts {
            Some(all) => crate::policy::proof::fingerprint(
                all.iter().map(|a| (a.path.as_str(), a.sha256.as_str())),
            ),
            None if self.handoff.artifacts.is_empty() => crate::policy::proof::fingerprint([]),
            None => return None,
        };
        crate::app::review::sender::sender_of(
            data_dir,
            ws,
            &self.record_at,
            &self.key,
            self.revision,
            &digest,
            &fingerprint,
        )
    }
}

/// Every decided revision of a record: the last one (`decision.json`) and those a later
/// revision replaced (`decision-rev-N.json`, the revision's text in `rev-N.json`).
fn decided(store: &Store, dir: &str) -> Vec<Revision> {
    let mut all = revisions(store, dir);
    all.retain(|r| r.decision.is_some());
    all
}

/// Every revision of a record: those decided, and the last one whether decided or not.
pub(in crate::app) fn revisions(store: &Store, dir: &str) -> Vec<Revision> {
    let at = |file: &str| Path::new("handoffs").join(dir).join(file);
    let Some(committed): Option<Committed> = read_store(store, &at(META)) else {
        return Vec::new();
    };
    let text_of = |rev: u32| -> Option<String> {
        let bytes = store.read(&at(&rev_file(rev))).ok()??;
        String::from_utf8(bytes).ok()
    };
    let meta = committed.meta;
    let last = meta.revision;
    let decision_of = |rev: u32| -> Option<Decision> {
        let file = if rev == last {
            DECISION.to_string()
        } else {
            old_decision_file(rev)
        };
        read_store(store, &at(&file))
    };
    let route = meta.route.as_ref().and_then(|r| r.route.clone());
    let mut out = Vec::new();
    for rev in 1..=last {
        let decision = decision_of(rev);
        if decision.is_none() && rev != last {
            continue;
        }
        let text = match rev == last {
            true => committed.content.clone().or_else(|| text_of(rev)),
            false => text_of(rev),
        };
        let Some(text) = text else { continue };
        let Ok(handoff) = serde_json::from_str::<Handoff>(&text) else {
            continue;
        };
        let stamps = match last - rev {
            0 => Some(&meta.artifacts),
            1 => meta.previous_artifacts.as_ref(),
            _ => None,
        };
        let arrived = match rev {
            r if r == last && !meta.updated_at.is_empty() => meta.updated_at.clone(),
            1 => meta.received_at.clone(),
            // Sent after the decision on the revision before: the checkpoints written by then.
            r => decision_of(r - 1).map(|d| d.at).unwrap_or_default(),
        };
        out.push(Revision {
            key: meta.key.clone(),
            revision: rev,
            handoff,
            text,
            task_id: meta.task_id.clone(),
            route: route.clone(),
            artifacts: stamps.map(|s| crate::app::review::policy::artifact_facts(s)),
            arrived,
            record_at: meta.received_at.clone(),
            decision,
        });
    }
    out
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
