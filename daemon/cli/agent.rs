//! The agent-side commands: `validate`, `wait` (and `submit`, in its own file). They work on
//! files alone, so an agent can use them on a shared folder without reaching the daemon.

use baton::contract::schema::Kind;
use baton::contract::validate::{self, oversize_digest, sha256_hex, Format, Rejected};
use baton::contract::{json, Decision, Limits, Problem};
use baton::workspace::{self, ReadError, Workspace};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub(super) fn read(file: &Path, limits: &Limits) -> anyhow::Result<Vec<u8>> {
    match workspace::read_limited(file, limits.max_bytes) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => anyhow::bail!("{}: no such file", file.display()),
        Err(ReadError::TooLarge { size, .. }) => {
            anyhow::bail!(
                "{}: {}",
                file.display(),
                json::too_large(size, limits).message
            )
        }
        Err(e) => anyhow::bail!("{}: {e}", file.display()),
    }
}

/// The daemon's limits as `./baton.toml` sets them (else the defaults), so an agent's check
/// agrees with what the daemon will say.
pub(super) fn limits() -> Limits {
    baton::config::Config::load(None).map_or_else(|_| Limits::default(), |c| c.limits)
}

pub(super) fn print_problems(problems: &[Problem]) -> ExitCode {
    for p in problems {
        println!("{p}");
    }
    ExitCode::from(1)
}

pub fn validate(file: &Path, kind: Option<Kind>) -> anyhow::Result<ExitCode> {
    let limits = limits();
    let bytes = match read(file, &limits) {
        Ok(b) => b,
        Err(e) => return Ok(print_problems(&[Problem::new("", format!("{e:#}"))])),
    };
    let kind = kind.unwrap_or_else(|| kind_of(file, &bytes));
    let result: Result<String, Rejected> = match kind {
        Kind::Handoff => validate::handoff_as(Format::of(file), &bytes, &limits).map(|a| {
            // Without an id the key depends on the workspace: known if the file is in one.
            let folder = file.parent().filter(|d| !d.as_os_str().is_empty());
            let workspace = Workspace::open(folder.unwrap_or(Path::new("."))).ok();
            let key = match (&a.doc.id, workspace) {
                (Some(id), _) => format!("key {id}"),
                (None, Some(ws)) => format!("key {}", validate::handoff_key(&ws.name, &a)),
                (None, None) => {
                    "no id: its key is derived from the workspace it is submitted to".into()
                }
            };
            format!(
                "valid handoff (handoff_version {}): {key}",
                a.doc.handoff_version
            )
        }),
        Kind::Checkpoint => validate::checkpoint(&bytes, &limits).map(|a| {
            format!(
                "valid checkpoint: task {} step {}",
                a.doc.task_id, a.doc.step
            )
        }),
        Kind::Decision => validate::decision(&bytes, &limits).map(|a| {
            format!(
                "valid decision: {} for {}",
                a.doc.outcome.as_str(),
                a.doc.handoff_key
            )
        }),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            Ok(ExitCode::SUCCESS)
        }
        Err(rejected) => Ok(print_problems(&rejected.problems)),
    }
}

/// The kind of a document as the daemon would take it: by its place (`handoff.json`,
/// `decision.json`, a file under `checkpoints/`), else by its top-level version field, else a
/// handoff, so that a broken file is judged as what it most likely is.
fn kind_of(file: &Path, bytes: &[u8]) -> Kind {
    match file.file_name().and_then(|n| n.to_str()) {
        Some(name) if workspace::HANDOFF_FILES.contains(&name) => return Kind::Handoff,
        Some(workspace::DECISION_FILE) => return Kind::Decision,
        _ => {}
    }
    let folders = file.parent().into_iter().flat_map(Path::components);
    if folders
        .into_iter()
        .any(|c| c.as_os_str() == workspace::CHECKPOINTS_DIR)
    {
        return Kind::Checkpoint;
    }
    if Format::of(file) == Format::Yaml {
        // Only handoffs are taken in YAML.
        return Kind::Handoff;
    }
    let value: Option<serde_json::Value> = serde_json::from_slice(bytes).ok();
    let has = |field: &str| value.as_ref().is_some_and(|v| v.get(field).is_some());
    if has("checkpoint_version") {
        Kind::Checkpoint
    } else if has("decision_version") {
        Kind::Decision
    } else {
        Kind::Handoff
    }
}

/// The digests a decision answering these handoff bytes may carry, whatever limits the daemon
/// runs with: raw bytes, canonical JSON, or the size-only digest of an oversize file.
fn digests_of(path: &Path, format: Format) -> anyhow::Result<Vec<String>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Ok(vec![sha256_hex(b"not-regular")]);
    }
    // Over the daemon's size limit (which this command does not know) it answers by size.
    let mut digests = vec![oversize_digest(meta.len())];
    match workspace::read_limited(path, 64 * 1024 * 1024) {
        Ok(Some(bytes)) => {
            digests.push(sha256_hex(&bytes));
            digests.extend(validate::handoff_digest_as(format, &bytes));
        }
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            digests.push(sha256_hex(b"unreadable"));
        }
        _ => {}
    }
    Ok(digests)
}

pub fn wait(dir: &Path, timeout: Option<f64>) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    warn_if_unserved(&ws);
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    loop {
        if let Some(d) = answer_in_place(&ws)? {
            println!("{}", serde_json::to_string_pretty(&d)?);
            return Ok(ExitCode::from(d.outcome.exit_code()));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            eprintln!(
                "baton: no decision for the handoff in {} yet (timed out)",
                ws.root.display()
            );
            return Ok(ExitCode::from(7));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The decision.json in `ws` if it answers the handoff file in place (`baton wait`, the MCP
/// tool `wait_for_decision`); an error when there is no handoff file to wait on.
pub(super) fn answer_in_place(ws: &Workspace) -> anyhow::Result<Option<Decision>> {
    let handoff = ws.handoff_file();
    if std::fs::symlink_metadata(&handoff.path).is_err() {
        anyhow::bail!(
            "no handoff.json (or handoff.yaml) in {}: submit one first",
            ws.root.display()
        );
    }
    let digests = digests_of(&handoff.path, handoff.format)?;
    let decision = ws
        .read(&ws.decision_path(), 1024 * 1024)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<Decision>(&b).ok());
    Ok(decision.filter(|d| {
        d.handoff_sha256
            .as_ref()
            .is_some_and(|s| digests.contains(s))
    }))
}

/// Warns on standard error when no running daemon serves `ws` (its heartbeat is missing or
/// stale): the agent would otherwise wait for an answer that cannot come.
pub(super) fn warn_if_unserved(ws: &Workspace) {
    if let Err(why) = baton::heartbeat::check(ws) {
        eprintln!(
            "baton: warning: no running daemon serves {}: {why}; a handoff there is answered \
             only once a daemon whose `workspaces` cover it runs (`baton init` says which)",
            ws.root.display()
        );
    }
}
