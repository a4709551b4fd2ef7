//! The text of the store's and agents' JSON documents, as the index takes it, and the small
//! readers `sources` uses.

use serde_json::Value;
use std::path::Path;

/// The fields a person wrote to be read (at any depth: a decision's `edits.instructions`, a
/// problem's `message`, an artifact's `note`), in the order a snippet without a match shows
/// them. Everything else in a record (names, times, digests, ids) is searched but never shown.
const PROSE: [&str; 13] = [
    "title",
    "summary",
    "task",
    "reason",
    "comment",
    "completed",
    "remaining",
    "decisions",
    "pitfalls_hit",
    "expected_output",
    "instructions",
    "note",
    "message",
];

/// The text of a JSON document, one string a line: its prose (for snippets) and the rest.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Text {
    pub prose: String,
    pub other: String,
}

pub(super) fn text_of(value: &Value) -> Text {
    let mut out = Text::default();
    let Value::Object(map) = value else {
        split(value, &mut out);
        return out;
    };
    for field in PROSE {
        if let Some(v) = map.get(field) {
            strings(v, &mut out.prose);
        }
    }
    for (k, v) in map {
        if !PROSE.contains(&k.as_str()) && !skipped(k) {
            split(v, &mut out);
        }
    }
    out
}

/// Strings under a prose field go to `prose`, the others to `other`.
fn split(v: &Value, out: &mut Text) {
    match v {
        Value::String(s) => line(s, &mut out.other),
        Value::Array(items) => items.iter().for_each(|i| split(i, out)),
        Value::Object(map) => {
            for (k, v) in map.iter().filter(|(k, _)| !skipped(k)) {
                match PROSE.contains(&k.as_str()) {
                    true => strings(v, &mut out.prose),
                    false => split(v, out),
                }
            }
        }
        _ => {}
    }
}

/// Every string of `v`, one a line.
fn strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => line(s, out),
        Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

fn line(s: &str, out: &mut String) {
    out.push_str(s);
    out.push('\n');
}

/// Version strings and artifacts' digests are noise to a reader and to a search.
fn skipped(key: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_is_told_from_names_times_and_digests() {
        let decision = serde_json::json!({
            "decision_version": "1", "handoff_key": "k", "outcome": "rejected", "by": "alice",
            "at": "2026-01-31T12:00:00Z", "handoff_sha256": "ab".repeat(32),
            "comment": "the retry loop never backs off",
            "edits": { "instructions": "add jitter" },
            "errors": [{ "pointer": "/task", "message": "too vague" }]
        });
        let text = text_of(&decision);
        assert_eq!(
            text.prose,
            "the retry loop never backs off\nadd jitter\ntoo vague\n"
        );
        assert!(text.other.contains("alice") && text.other.contains(&"ab".repeat(32)));
        assert!(!text.other.contains("backs off"));
        assert!(!text.other.lines().any(|l| l == "1"), "no version");
    }
}
