//! The text of the store's and agents' JSON documents, as the index takes it, and the small
//! readers `sources` uses.

use serde_json::Value;
use std::path::Path;

/// Fields read first, so a snippet without a match starts with what a person reads first.
const LEADING: [&str; 7] = [
    "title",
    "summary",
    "task",
    "reason",
    "comment",
    "completed",
    "remaining",
];

/// The text of a JSON document: every string value, one per line (the leading fields first),
/// so a search finds words anywhere in a handoff, checkpoint or decision.
pub(super) fn strings_of(value: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => {
                out.push_str(s);
                out.push('\n');
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => {
                for (k, v) in map {
                    if top_level_skip(k) {
                        continue;
                    }
                    walk(v, out);
                }
            }
            _ => {}
        }
    }
    let mut out = String::new();
    let Value::Object(map) = value else {
        walk(value, &mut out);
        return out;
    };
    for field in LEADING {
        if let Some(v) = map.get(field) {
            walk(v, &mut out);
        }
    }
    for (k, v) in map {
        if !LEADING.contains(&k.as_str()) && !top_level_skip(k) {
            walk(v, &mut out);
        }
    }
    out
}

/// Version strings and digests are noise to a reader.
fn top_level_skip(key: &str) -> bool {
    key.ends_with("_version") || key == "sha256"
}

pub(super) fn text(v: &Value, field: &str) -> Option<String> {
    v[field].as_str().map(str::to_string)
}

pub(super) fn read_json(path: &Path, limit: u64) -> Option<Value> {
    let m = std::fs::metadata(path).ok()?;
    if m.len() > limit {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

pub(super) fn file_mtime(path: &Path) -> i64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}
