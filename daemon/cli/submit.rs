//! `baton submit DIR FILE`: every check the daemon makes of a handoff.json, made before it is
//! written, with the daemon's own functions, and every problem reported at once. `submit`
//! must never say yes where the daemon will say no: the agent would then wait for an answer
//! that is `invalid`.

use super::agent::{limits, print_problems, read, warn_if_unserved};
use baton::config::Config;
use baton::contract::validate::{self, valid_id, Format, Rejected};
use baton::contract::{Decision, Limits, Problem};
use baton::workspace::{self, Workspace};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;

/// Daemon files read back here are small; the bound only keeps a planted giant out.
const DAEMON_FILE_LIMIT: usize = 1024 * 1024;

pub fn submit(dir: &Path, file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    warn_if_unserved(&ws);
    let limits = limits();
    let bytes = read(file, &limits)?;
    let format = Format::of(file);
    let config = Config::load(None).ok();
    let key = match check(&ws, config.as_ref(), format, &bytes, &limits) {
        Ok(key) => key,
        Err(problems) => return Ok(print_problems(&problems)),
    };
    // After changes_requested, a new key starts unrelated work: say which id revises.
    // Only from a decision the daemon signed, when there are keys to check with.
    let root = super::trust::Root::find(None, false);
    let unrevised = match &root {
        Ok(root) => super::trust::unrevised_warning(&ws, &key, root),
        Err(_) => workspace::unrevised_warning(&ws, &key),
    };
    // Written under the name of its format; the newest handoff file is the one that counts.
    let target = ws.root.join(target_name(file, format));
    workspace::write_atomic(&target, &bytes, workspace::fsync::Kind::Workspace)?;
    if json {
        // The digest the daemon binds decisions to: of the content, canonical JSON (a YAML
        // handoff's too), the same whatever the file's spacing.
        let digest = validate::handoff_digest_as(format, &bytes)
            .expect("bytes submit accepted have a content digest");
        let said = serde_json::json!({
            "key": key,
            "path": target,
            "handoff_sha256": digest,
        });
        out!("{said}");
    } else {
        out!("submitted {key} as {}", target.display());
    }
    if let Some(u) = unrevised {
        err!("baton: warning: {}", u.message);
    }
    let now = ws.handoff_file();
    if now.path != target {
        err!(
            "baton: warning: {} is newer and still counts; remove it or submit again",
            now.path.display()
        );
    }
    for other in now.shadowed.iter().filter(|p| **p != target) {
        err!(
            "baton: note: {} is older and no longer counts; remove it to avoid confusion",
            other.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Every check the daemon will make of handoff `bytes` (written in `format`) for workspace
/// `ws`, under the routes, users and workspaces of `config` when there is one: the key it will
/// have, or every problem at once. `baton submit` and the MCP tool `submit_handoff` both call
/// this; it prints nothing on standard output (MCP speaks there).
pub(super) fn check(
    ws: &Workspace,
    config: Option<&Config>,
    format: Format,
    bytes: &[u8],
    limits: &Limits,
) -> Result<String, Vec<Problem>> {
    let mut route_problems = Vec::new();
    let (mut problems, value, key, digest) = match validate::handoff_as(format, bytes, limits) {
        Ok(accepted) => {
            let key = validate::handoff_key(&ws.name, &accepted);
            route_problems =
                config.map_or_else(Vec::new, |c| sign_off_problems(c, ws, &accepted.doc));
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
        found.extend(workspace::artifact_problems(ws, value));
        found.extend(key_problem(config, ws, value, &key, &digest));
    }
    if !found.is_empty() {
        problems.extend(validate::finish_as(format, bytes, limits, found));
        // Positioned problems in file order; unpositioned ones (a "more not listed" line) last.
        problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
    }
    match problems.is_empty() {
        true => Ok(key),
        false => Err(problems),
    }
}

/// `handoff.json`, or `handoff.yaml` / `handoff.yml` as the file given is named.
pub(super) fn target_name(file: &Path, format: Format) -> &'static str {
    let yml = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yml"));
    match (format, yml) {
        (Format::Json, _) => workspace::HANDOFF_FILE,
        (Format::Yaml, false) => "handoff.yaml",
        (Format::Yaml, true) => "handoff.yml",
    }
}

/// The daemon's key rules: an `id` already decided with other content (read from the
/// workspace's archive copy of the decision), or already used in another workspace of
/// `./baton.toml` (advisory: the daemon's own configuration may differ).
fn key_problem(
    config: Option<&Config>,
    ws: &Workspace,
    value: &Value,
    key: &str,
    digest: &str,
) -> Option<Problem> {
    let id = value
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| valid_id(id))?;
    let archived = ws.archive_dir(key).join("decision.json");
    let doc: Option<Value> = ws
        .read(&archived, DAEMON_FILE_LIMIT)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let decided = doc
        .as_ref()
        .and_then(|doc| serde_json::from_value::<Decision>(doc.clone()).ok());
    if let (Some(d), Some(doc)) = (decided, doc) {
        let changed = d.handoff_sha256.as_deref() != Some(digest);
        if changed && !d.outcome.allows_revision() && signed_here(ws, &doc, &archived) {
            let message = format!("handoff \"{key}\" was already decided ({}); its content cannot change, use a new id for new work", d.outcome.as_str());
            return Some(Problem::new("/id", message));
        }
    }
    let found = workspace::discover(&config?.workspaces).ok()?;
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

/// Whether an archived decision that would refuse the handoff's id may be believed: any
/// writer of the folder can plant one to push the agent to a new id and leave a request for
/// changes unanswered. With keys to check with (`BATON_KEY`, `BATON_URL`), only one the daemon
/// signed in this workspace; with none, as written (the daemon has the last word).
fn signed_here(ws: &Workspace, doc: &Value, file: &Path) -> bool {
    let keys = match super::trust::Root::find(None, false).map(|root| root.keys()) {
        Ok(Ok(Some(keys))) => keys,
        _ => return true,
    };
    let now = time::OffsetDateTime::now_utc();
    // An expired approval is still the daemon's answer (the id stays used), but only one made
    // here: checked as at the moment it expired, which answers where it was made, as any other.
    let checked = match baton::receipts::check(doc, keys.list(), now) {
        Err(baton::receipts::Refusal::Expired(until)) => baton::receipts::parse_time(&until)
            .ok_or(baton::receipts::Refusal::Expired(until))
            .and_then(|at| baton::receipts::check(doc, keys.list(), at)),
        other => other,
    };
    match checked {
        Ok(checked) if checked.workspace == ws.name => true,
        Ok(_) | Err(_) => {
            tracing::warn!(
                "{} is not a decision the daemon signed in this workspace: its id is not taken \
                 as decided",
                file.display()
            );
            false
        }
    }
}

/// The daemon's rule for `sign_off` (roles the route admits and someone holds), under the
/// routes and users of `./baton.toml` or the embedded default; and a note on standard error
/// when `fallback.route` could never be escalated to (the handoff is valid all the same).
fn sign_off_problems(
    config: &Config,
    ws: &Workspace,
    doc: &baton::contract::Handoff,
) -> Vec<Problem> {
    let route = baton::routing::route_for(&config.routes, doc, &ws.name);
    let problems: Vec<Problem> =
        baton::routing::sign_off_problems(route, &config.users, &doc.sign_off)
            .into_iter()
            .map(|(i, message)| Problem::new(format!("/sign_off/{i}"), message))
            .collect();
    if let Some(m) = baton::routing::fallback_problem(&config.routes, doc, &ws.name) {
        err!("baton: note: /fallback/route: {m}; it will not be escalated");
    }
    problems
}
