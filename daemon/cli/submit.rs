//! `baton submit DIR FILE`: every check the daemon makes of a handoff.json, made before it is
//! written, with the daemon's own functions, and every problem reported at once. `submit`
//! must never say yes where the daemon will say no: the agent would then wait for an answer
//! that is `invalid`.

use super::agent::{limits, print_problems, read, warn_if_unserved};
use baton::config::Config;
use baton::contract::validate::{self, valid_id, Rejected};
use baton::contract::{Decision, Problem};
use baton::workspace::{self, Workspace};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

/// Daemon files read back here are small; the bound only keeps a planted giant out.
const DAEMON_FILE_LIMIT: usize = 1024 * 1024;

pub fn submit(dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    warn_if_unserved(&ws);
    let limits = limits();
    let bytes = read(file, &limits)?;
    let mut route_problems = Vec::new();
    let (mut problems, value, key, digest) = match validate::handoff(&bytes, &limits) {
        Ok(accepted) => {
            let key = validate::handoff_key(&ws.name, &accepted);
            route_problems = routing_problems(&ws, &accepted.doc);
            (Vec::new(), Some(accepted.value), key, accepted.digest)
        }
        Err(rejected) => {
            let key = validate::rejected_key(&ws.name, &rejected);
            let Rejected {
                problems,
                value,
                digest,
            } = rejected;
            (problems, value, key, digest)
        }
    };
    // The checks of the workspace, made even when the file has problems of its own, so the
    // agent hears all of them in one go.
    let mut found = route_problems;
    if let Some(value) = value.as_ref().filter(|v| v.is_object()) {
        found.extend(workspace::artifact_problems(&ws, value));
        found.extend(key_problem(&ws, value, &key, &digest));
    }
    if !found.is_empty() {
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        problems.extend(validate::finish(text, found, 0));
        // Positioned problems in file order; unpositioned ones (a "more not listed" line) last.
        problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
    }
    if !problems.is_empty() {
        return Ok(print_problems(&problems));
    }
    workspace::write_atomic(
        &ws.handoff_path(),
        &bytes,
        workspace::fsync::Kind::Workspace,
    )?;
    println!("submitted {key} as {}", ws.handoff_path().display());
    Ok(ExitCode::SUCCESS)
}

/// The daemon's key rules: an `id` already decided with other content (read from the
/// workspace's archive copy of the decision), or already used in another workspace of
/// `./baton.toml` (advisory: the daemon's own configuration may differ).
fn key_problem(ws: &Workspace, value: &Value, key: &str, digest: &str) -> Option<Problem> {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| valid_id(id))?;
    let archived = ws.archive_dir(key).join("decision.json");
    let decided: Option<Decision> = ws
        .read(&archived, DAEMON_FILE_LIMIT)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(d) = decided {
        let changed = d.handoff_sha256.as_deref() != Some(digest);
        if changed && !d.outcome.allows_revision() {
            let message = format!("handoff \"{key}\" was already decided ({}); its content cannot change, use a new id for new work", d.outcome.as_str());
            return Some(Problem::new("/id", message));
        }
    }
    let config = Config::load(None).ok()?;
    let found = workspace::discover(&config.workspaces).ok()?;
    let owner = found
        .workspaces
        .iter()
        .find(|other| other.root != ws.root && other.archive_dir(id).join("meta.json").is_file())?;
    let message = format!(
        "id \"{id}\" is already used in workspace \"{}\"; keys are unique across the daemon, use a new id",
        owner.name
    );
    Some(Problem::new("/id", message))
}

/// The daemon's rule for `sign_off` (roles the route admits and someone holds), under the
/// routes and users of `./baton.toml` or the embedded default; and a note on standard error
/// when `fallback.route` could never be escalated to (the handoff is valid all the same).
fn routing_problems(ws: &Workspace, doc: &baton::contract::Handoff) -> Vec<Problem> {
    let Ok(config) = Config::load(None) else {
        return Vec::new();
    };
    let route = baton::routing::route_for(&config.routes, doc, &ws.name);
    let problems: Vec<Problem> =
        baton::routing::sign_off_problems(route, &config.users, &doc.sign_off)
            .into_iter()
            .map(|(i, message)| Problem::new(format!("/sign_off/{i}"), message))
            .collect();
    if let Some(m) = baton::routing::fallback_problem(&config.routes, doc, &ws.name) {
        eprintln!("baton: note: /fallback/route: {m}; it will not be escalated");
    }
    problems
}
