//! The agent-side commands: `validate`, `submit`, `wait`. They work on files alone, so an
//! agent can use them on a shared folder without reaching the daemon.

use baton::contract::schema::Kind;
use baton::contract::validate::{self, oversize_digest, sha256_hex, Rejected};
use baton::contract::{json, Decision, Limits, Problem};
use baton::workspace::{self, ReadError, Workspace};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn read(file: &Path, limits: &Limits) -> anyhow::Result<Vec<u8>> {
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
fn limits() -> Limits {
    baton::config::Config::load(None).map_or_else(|_| Limits::default(), |c| c.limits)
}

fn print_problems(problems: &[Problem]) -> ExitCode {
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
    let kind = kind.unwrap_or_else(|| guess_kind(&bytes));
    let result: Result<String, Rejected> = match kind {
        Kind::Handoff => validate::handoff(&bytes, &limits).map(|a| {
            let key = validate::handoff_key(&a.doc, &a.digest);
            format!(
                "valid handoff (handoff_version {}): key {key}",
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

/// The kind of a document by its top-level version field (a handoff by default, so that a
/// broken file is judged as the handoff it most likely is).
fn guess_kind(bytes: &[u8]) -> Kind {
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

pub fn submit(dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(dir)?;
    let limits = limits();
    let bytes = read(file, &limits)?;
    let accepted = match validate::handoff(&bytes, &limits) {
        Ok(a) => a,
        Err(rejected) => return Ok(print_problems(&rejected.problems)),
    };
    let text = std::str::from_utf8(&bytes).expect("accepted handoffs are UTF-8");
    let problems: Vec<Problem> = accepted
        .doc
        .artifacts
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let e = workspace::resolve(&ws.root, &a.path).err()?;
            Some(Problem::new(format!("/artifacts/{i}/path"), e.to_string()))
        })
        .collect();
    let problems = validate::finish(text, problems, 0);
    if !problems.is_empty() {
        return Ok(print_problems(&problems));
    }
    workspace::write_atomic(&ws.handoff_path(), &bytes)?;
    let key = validate::handoff_key(&accepted.doc, &accepted.digest);
    println!("submitted {key} as {}", ws.handoff_path().display());
    Ok(ExitCode::SUCCESS)
}

/// The digests a decision answering these handoff bytes may carry, whatever limits the daemon
/// runs with: raw bytes, canonical JSON, or the size-only digest of an oversize file.
fn digests_of(path: &Path) -> anyhow::Result<Vec<String>> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Ok(vec![sha256_hex(b"not-regular")]);
    }
    // Over the daemon's size limit (which this command does not know) it answers by size.
    let mut digests = vec![oversize_digest(meta.len())];
    match workspace::read_limited(path, 64 * 1024 * 1024) {
        Ok(Some(bytes)) => {
            digests.push(sha256_hex(&bytes));
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                digests.push(sha256_hex(&json::canonical(&value)));
            }
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
    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t.max(0.0)));
    loop {
        let handoff = ws.handoff_path();
        if !handoff.exists() {
            anyhow::bail!("no handoff.json in {}: submit one first", ws.root.display());
        }
        let digests = digests_of(&handoff)?;
        let decision = std::fs::read(ws.decision_path())
            .ok()
            .and_then(|b| serde_json::from_slice::<Decision>(&b).ok());
        if let Some(d) = decision.filter(|d| {
            d.handoff_sha256
                .as_ref()
                .is_some_and(|s| digests.contains(s))
        }) {
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
