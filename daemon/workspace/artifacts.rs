//! The checks of a handoff only its workspace can make: artifacts that are missing, lead out
//! of it, or do not match their `sha256`. The daemon and `baton submit` both call this, so an
//! agent hears before writing what the daemon would say after.

use super::{resolve, PathError, Workspace};
use crate::contract::Problem;
use serde_json::Value;

/// The problems of the `artifacts` of `handoff` (a parsed handoff.json, valid or not) in `ws`.
/// Entries the schema already refuses (no string path, a path refused on its face, a
/// malformed sha256) are left to the schema's problems, so nothing is said twice.
pub fn artifact_problems(ws: &Workspace, handoff: &Value) -> Vec<Problem> {
    artifact_problems_with(ws, handoff, &mut |real, want| want.map(|_| ws.sha256(real)))
}

/// Hashes an artifact (its real path, the sha256 the handoff wants), or answers `None`.
pub type Hasher<'a> =
    dyn FnMut(&std::path::Path, Option<&str>) -> Option<std::io::Result<String>> + 'a;

/// `artifact_problems`, with the hashing left to `hash(real path, wanted sha256)`, which may
/// answer `None` to skip a file: the daemon hashes every artifact (to stamp it) through its
/// cache, `baton submit` only those with a `sha256` to compare.
pub fn artifact_problems_with(
    ws: &Workspace,
    handoff: &Value,
    hash: &mut Hasher<'_>,
) -> Vec<Problem> {
    let artifacts = handoff.get("artifacts").and_then(Value::as_array);
    let mut problems = Vec::new();
    for (i, artifact) in artifacts.into_iter().flatten().enumerate() {
        let at = format!("/artifacts/{i}");
        let Some(path) = artifact.get("path").and_then(Value::as_str) else {
            continue;
        };
        let real = match resolve(&ws.root, path) {
            Ok(real) => real,
            Err(PathError::Refused(_)) => continue,
            Err(e) => {
                problems.push(Problem::new(format!("{at}/path"), e.to_string()));
                continue;
            }
        };
        let want = artifact.get("sha256").and_then(Value::as_str);
        let want = want.filter(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(got) = hash(&real, want) else {
            continue;
        };
        match got {
            Ok(got) if want.is_none_or(|w| got.eq_ignore_ascii_case(w)) => {}
            Ok(got) => problems.push(Problem::new(
                format!("{at}/sha256"),
                format!("does not match the file: its sha256 is {got}; recompute it after the last write"),
            )),
            Err(e) => problems.push(Problem::new(
                format!("{at}/path"),
                format!("cannot read \"{path}\": {e}"),
            )),
        }
    }
    problems
}
