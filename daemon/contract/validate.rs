//! The validation pipeline: bytes -> limits-checked JSON -> version gate -> schema -> semantic
//! rules -> typed document, collecting every problem with its pointer and line:column.

use super::json::{self, Limits};
use super::problem::Problem;
use super::schema::{self, Kind};
use super::{checkpoint::Checkpoint, handoff::Handoff};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The major versions of handoff_version/checkpoint_version this build speaks.
pub const SPOKEN_MAJOR: u64 = 1;

/// A document that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted<T> {
    pub value: Value,
    pub doc: T,
    /// sha256 (hex) of the canonical JSON: equal for equal content, whatever the formatting.
    pub digest: String,
}

/// A document that did not, with everything wrong in it.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub problems: Vec<Problem>,
    /// The parsed value when the file was at least JSON (to name its id and task).
    pub value: Option<Value>,
    /// Canonical digest when the file was JSON, else the sha256 of its raw bytes.
    pub digest: String,
}

impl Rejected {
    fn only(problem: Problem, digest: String) -> Self {
        Rejected {
            problems: vec![problem],
            value: None,
            digest,
        }
    }

    /// The string field `name` of the parsed document, if there was one.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.value.as_ref()?.get(name)?.as_str()
    }
}

/// Validates a handoff.json.
pub fn handoff(bytes: &[u8], limits: &Limits) -> Result<Accepted<Handoff>, Rejected> {
    accept(bytes, limits, Kind::Handoff, "handoff_version", |value| {
        let artifacts = value.get("artifacts").and_then(Value::as_array);
        artifacts
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, a)| {
                let path = a.get("path")?.as_str()?;
                let why = relative_path_problem(path)?;
                Some(Problem::new(format!("/artifacts/{i}/path"), why))
            })
            .collect()
    })
}

/// Validates a checkpoint file.
pub fn checkpoint(bytes: &[u8], limits: &Limits) -> Result<Accepted<Checkpoint>, Rejected> {
    accept(
        bytes,
        limits,
        Kind::Checkpoint,
        "checkpoint_version",
        |_| Vec::new(),
    )
}

/// Validates a decision file (for `baton validate`).
pub fn decision(bytes: &[u8], limits: &Limits) -> Result<Accepted<super::Decision>, Rejected> {
    accept(bytes, limits, Kind::Decision, "decision_version", |_| {
        Vec::new()
    })
}

/// The idempotency key of a handoff: its `id`, else the digest of its canonical JSON.
pub fn handoff_key(doc: &Handoff, digest: &str) -> String {
    doc.id.clone().unwrap_or_else(|| digest.to_string())
}

/// The key a rejected handoff is answered under: its `id` when that is well-formed.
pub fn rejected_key(rejected: &Rejected) -> String {
    match rejected.field("id") {
        Some(id) if valid_id(id) => id.to_string(),
        _ => rejected.digest.clone(),
    }
}

pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// The digest `decision.json` records as `handoff_sha256` for these bytes.
pub fn content_digest(bytes: &[u8], limits: &Limits) -> String {
    match json::parse(bytes, limits) {
        Ok(v) => sha256_hex(&json::canonical(&v)),
        Err(_) => sha256_hex(bytes),
    }
}

/// The digest (and key) of a handoff file too large to read: derived from its size alone, so
/// the daemon and `baton wait` agree without reading it.
pub fn oversize_digest(size: u64) -> String {
    sha256_hex(format!("oversize:{size}").as_bytes())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn accept<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &Limits,
    kind: Kind,
    version_field: &str,
    semantic: impl Fn(&Value) -> Vec<Problem>,
) -> Result<Accepted<T>, Rejected> {
    let value = json::parse(bytes, limits).map_err(|p| Rejected::only(p, sha256_hex(bytes)))?;
    let digest = sha256_hex(&json::canonical(&value));
    let text = std::str::from_utf8(bytes).expect("json::parse accepted only UTF-8");
    let reject = |problems: Vec<Problem>, value: Value| {
        let mut problems: Vec<Problem> =
            problems.into_iter().map(|p| positioned(text, p)).collect();
        // In file order, as a person reads them.
        problems.sort_by_key(|p| (p.line, p.column));
        Rejected {
            problems,
            value: Some(value),
            digest: digest.clone(),
        }
    };
    if !value.is_object() {
        let found = schema::describe(&value);
        let p = Problem::new("", format!("expected a JSON object, found {found}"));
        return Err(reject(vec![p], value));
    }
    if let Some(p) = version_problem(&value, version_field) {
        return Err(reject(vec![p], value));
    }
    let mut problems = schema::check(kind, &value);
    problems.extend(semantic(&value));
    if !problems.is_empty() {
        return Err(reject(problems, value));
    }
    match serde_json::from_value::<T>(value.clone()) {
        Ok(doc) => Ok(Accepted { value, doc, digest }),
        // The schema is generated from T, so this means a schema/serde mismatch: still say so.
        Err(e) => Err(reject(vec![Problem::new("", e.to_string())], value)),
    }
}

/// Adds the line:column of `p.pointer` in `text`, when it has none yet.
pub fn positioned(text: &str, p: Problem) -> Problem {
    match json::locate(text, &p.pointer) {
        Some((line, column)) if p.line.is_none() => p.at(line, column),
        _ => p,
    }
}

/// A major version other than ours is refused before anything else is judged, because the
/// rest of such a file follows rules this build does not know.
fn version_problem(value: &Value, field: &str) -> Option<Problem> {
    let version = value.get(field)?.as_str()?;
    let major: u64 = version.split('.').next()?.parse().ok()?;
    (major != SPOKEN_MAJOR).then(|| {
        Problem::new(
            format!("/{field}"),
            format!(
                "{field} \"{version}\" is not supported: this daemon speaks {field} \
                 {SPOKEN_MAJOR}.x (\"1\", \"1.N\", \"1.N.M\"); upgrade baton or write version 1"
            ),
        )
    })
}

/// Why a workspace-relative path written by an agent is unacceptable on its face (no I/O:
/// symlinks are judged by the workspace module, which can look).
pub fn relative_path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("path is empty".into());
    }
    if path.contains('\0') {
        return Some("path contains a NUL byte".into());
    }
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if path.starts_with('/') || path.starts_with('\\') || drive {
        return Some(format!(
            "path \"{path}\" is absolute; give a path relative to the workspace, e.g. inbox/report.md"
        ));
    }
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Some(format!(
            "path \"{path}\" contains \"..\" and would leave the workspace"
        ));
    }
    None
}
