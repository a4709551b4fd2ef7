//! The validation pipeline: bytes -> limits-checked JSON -> version gate -> schema -> semantic
//! rules -> typed document, collecting every problem with its pointer and line:column.

use super::json::{self, Limits};
use super::problem::Problem;
use super::schema::{self, Kind};
use super::yaml::{self, Places};
use super::{checkpoint::Checkpoint, handoff::Handoff};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The major versions of handoff_version/checkpoint_version this build speaks.
pub const SPOKEN_MAJOR: u64 = 1;

/// At most this many problems are reported for one file. A 1 MiB file can hold half a million
/// mistakes (`[1, 1, ...]` where strings belong); listing them all would write a decision and
/// an audit event many times the size of the file.
pub const MAX_PROBLEMS: usize = 100;

/// A document that passed every check.
#[derive(Debug, Clone)]
pub struct Accepted<T> {
    pub value: Value,
    pub doc: T,
    /// sha256 (hex) of the canonical JSON (`null` optional fields dropped): equal for equal
    /// content, whatever the formatting.
    pub digest: String,
    /// `null` optional fields were dropped: the file as written is not what is kept.
    pub normalized: bool,
}

impl<T> Accepted<T> {
    /// What to keep (archive) of the file `written`: its bytes as they are, or, when it gave
    /// `null` for optional fields, the document without them, so a `null` is never written back.
    pub fn kept_bytes<'a>(&self, written: &'a [u8]) -> Cow<'a, [u8]> {
        if !self.normalized {
            return Cow::Borrowed(written);
        }
        let mut bytes = serde_json::to_vec_pretty(&self.value).expect("a Value always serializes");
        bytes.push(b'\n');
        Cow::Owned(bytes)
    }
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

/// How a handoff file is written: `handoff.json`, or `handoff.yaml` / `handoff.yml` (read
/// into the same JSON value, under the same limits and rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// The format a file name says: `.yaml` / `.yml` is YAML, anything else JSON.
    pub fn of(path: &std::path::Path) -> Format {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Format::Yaml,
            _ => Format::Json,
        }
    }
}

/// Validates a handoff written in `format`.
pub fn handoff_as(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Accepted<Handoff>, Rejected> {
    match format {
        Format::Json => handoff(bytes, limits),
        Format::Yaml => {
            let (value, places) =
                yaml::parse(bytes, limits).map_err(|p| Rejected::only(p, sha256_hex(bytes)))?;
            let mut accepted = judge(
                value,
                &Locator::Yaml(&places),
                Kind::Handoff,
                "handoff_version",
                handoff_problems,
            )?;
            // What is kept is the JSON the YAML stands for, never the YAML text.
            accepted.normalized = true;
            Ok(accepted)
        }
    }
}

/// Validates a handoff.json.
pub fn handoff(bytes: &[u8], limits: &Limits) -> Result<Accepted<Handoff>, Rejected> {
    accept(
        bytes,
        limits,
        Kind::Handoff,
        "handoff_version",
        handoff_problems,
    )
}

/// Validates a checkpoint file.
pub fn checkpoint(bytes: &[u8], limits: &Limits) -> Result<Accepted<Checkpoint>, Rejected> {
    accept(
        bytes,
        limits,
        Kind::Checkpoint,
        "checkpoint_version",
        artifact_path_problems,
    )
}

/// A handoff's artifacts that would leave the workspace, or land on one another in
/// `approved/` (`promoted::collisions`).
fn handoff_problems(value: &Value) -> Vec<Problem> {
    let mut problems = artifact_path_problems(value);
    problems.extend(super::promoted::collisions(value, |path| {
        relative_path_problem(path).is_none()
    }));
    problems
}

/// Artifact paths that would leave the workspace. A checkpoint's artifact may also be a bare
/// path string; it names a workspace file just the same.
fn artifact_path_problems(value: &Value) -> Vec<Problem> {
    let artifacts = value.get("artifacts").and_then(Value::as_array);
    artifacts
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, a)| {
            let (pointer, path) = match a {
                Value::String(path) => (format!("/artifacts/{i}"), path.as_str()),
                _ => (format!("/artifacts/{i}/path"), a.get("path")?.as_str()?),
            };
            Some(Problem::new(pointer, relative_path_problem(path)?))
        })
        .collect()
}

/// Validates a decision file (for `baton validate`).
pub fn decision(bytes: &[u8], limits: &Limits) -> Result<Accepted<super::Decision>, Rejected> {
    accept(bytes, limits, Kind::Decision, "decision_version", |_| {
        Vec::new()
    })
}

/// The idempotency key of a handoff in workspace `workspace`: its `id`, else `derived_key`.
pub fn handoff_key(workspace: &str, accepted: &Accepted<Handoff>) -> String {
    match &accepted.doc.id {
        Some(id) => id.clone(),
        None => derived_key(workspace, &accepted.value),
    }
}

/// The key of a handoff without `id`: the sha256 (hex) of the workspace name, one NUL byte
/// and the canonical JSON. The workspace is part of it so that the same content written in
/// two workspaces is two handoffs, not one workspace's handoff refused in the other.
pub fn derived_key(workspace: &str, value: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(workspace.as_bytes());
    hasher.update([0u8]);
    hasher.update(json::canonical(value));
    hex::encode(hasher.finalize())
}

/// The key a rejected handoff is answered under: its `id` when that is well-formed, else the
/// derived key when the file was JSON, else the digest of its bytes.
pub fn rejected_key(workspace: &str, rejected: &Rejected) -> String {
    match (rejected.field("id"), &rejected.value) {
        (Some(id), _) if valid_id(id) => id.to_string(),
        (_, Some(value)) => derived_key(workspace, value),
        _ => rejected.digest.clone(),
    }
}

/// The content digest of handoff bytes as the daemon computes it (canonical JSON, `null`
/// optional fields dropped), without limits; `None` when they are not JSON. For `baton wait`,
/// which must recognise the decision that answers the file in place.
pub fn handoff_digest(bytes: &[u8]) -> Option<String> {
    handoff_digest_as(Format::Json, bytes)
}

/// `handoff_digest` of a handoff written in `format`.
pub fn handoff_digest_as(format: Format, bytes: &[u8]) -> Option<String> {
    let wide = Limits {
        max_bytes: usize::MAX,
        max_depth: 128,
        max_string: usize::MAX,
    };
    // Parsed as the daemon parses it: bytes it refuses (a member named twice, which parsers
    // read as different content) have no content digest.
    let mut value: Value = match format {
        Format::Json => json::parse(bytes, &wide).ok()?,
        Format::Yaml => yaml::parse(bytes, &wide).ok()?.0,
    };
    super::nulls::drop_absent(Kind::Handoff, &mut value);
    Some(sha256_hex(&json::canonical(&value)))
}

pub fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
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
    let text = std::str::from_utf8(bytes).expect("json::parse accepted only UTF-8");
    judge(value, &Locator::Json(text), kind, version_field, semantic)
}

/// Where problems are in the file as written: found in the JSON text, or kept from the YAML.
enum Locator<'a> {
    Json(&'a str),
    Yaml(&'a Places),
}

/// The checks after parsing: version, schema, semantic rules, the typed document.
fn judge<T: DeserializeOwned>(
    mut value: Value,
    locator: &Locator,
    kind: Kind,
    version_field: &str,
    semantic: impl Fn(&Value) -> Vec<Problem>,
) -> Result<Accepted<T>, Rejected> {
    let normalized = super::nulls::drop_absent(kind, &mut value);
    let digest = sha256_hex(&json::canonical(&value));
    let reject = |problems: Vec<Problem>, unlisted: usize, value: Value| Rejected {
        problems: finish_located(locator, problems, unlisted),
        value: Some(value),
        digest: digest.clone(),
    };
    if !value.is_object() {
        let found = schema::describe(&value);
        let p = Problem::new("", format!("expected a JSON object, found {found}"));
        return Err(reject(vec![p], 0, value));
    }
    if let Some(p) = version_problem(&value, version_field) {
        return Err(reject(vec![p], 0, value));
    }
    let (mut problems, unlisted) = schema::check(kind, &value, MAX_PROBLEMS);
    problems.extend(semantic(&value));
    if !problems.is_empty() {
        return Err(reject(problems, unlisted, value));
    }
    match serde_json::from_value::<T>(value.clone()) {
        Ok(doc) => Ok(Accepted {
            value,
            doc,
            digest,
            normalized,
        }),
        // The schema is generated from T, so this means a schema/serde mismatch: still say so.
        Err(e) => Err(reject(vec![Problem::new("", e.to_string())], 0, value)),
    }
}

/// The problem list as reported: capped at `MAX_PROBLEMS` (a last line counts the rest, with
/// `unlisted` more dropped before this call), positioned, in file order as a person reads it.
pub fn finish(text: &str, problems: Vec<Problem>, unlisted: usize) -> Vec<Problem> {
    finish_located(&Locator::Json(text), problems, unlisted)
}

/// `finish` for a handoff written in `format` (`bytes` as written, parsed again to place
/// problems found after validation: an uncommon path, taken only for an invalid file).
pub fn finish_as(
    format: Format,
    bytes: &[u8],
    limits: &Limits,
    problems: Vec<Problem>,
) -> Vec<Problem> {
    match format {
        Format::Json => finish(std::str::from_utf8(bytes).unwrap_or_default(), problems, 0),
        Format::Yaml => {
            let places = yaml::parse(bytes, limits)
                .map(|(_, p)| p)
                .unwrap_or_default();
            finish_located(&Locator::Yaml(&places), problems, 0)
        }
    }
}

fn finish_located(locator: &Locator, mut problems: Vec<Problem>, unlisted: usize) -> Vec<Problem> {
    let more = unlisted + problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    let mut problems = match locator {
        Locator::Json(text) => positioned_all(text, problems),
        Locator::Yaml(places) => problems
            .into_iter()
            .map(|p| yaml_placed(places, p))
            .collect(),
    };
    problems.sort_by_key(|p| (p.line, p.column));
    if more > 0 {
        let message =
            format!("{more} more problem(s) not listed; fix the ones above and validate again");
        problems.push(Problem::new("", message));
    }
    problems
}

/// Adds line:column to every problem that has none, parsing `text` once: a file may have many problems, and
/// locating each one on its own costs the size of the file every time.
fn positioned_all(text: &str, problems: Vec<Problem>) -> Vec<Problem> {
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    let places = json::locate_all(text, &pointers);
    problems
        .into_iter()
        .zip(places)
        .map(|(p, place)| match place {
            Some((line, column)) if p.line.is_none() => p.at(line, column),
            _ => p,
        })
        .collect()
}

/// A problem placed in the YAML as written, with a hint where an unquoted scalar was read
/// as something other than the string the contract wants.
fn yaml_placed(places: &Places, mut p: Problem) -> Problem {
    if let Some(hint) = places.hint(&p.pointer, &p.message) {
        p.message.push_str(hint);
    }
    match (p.line, places.locate(&p.pointer)) {
        (None, Some((line, column))) => p.at(line, column),
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
