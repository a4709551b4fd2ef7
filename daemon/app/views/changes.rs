//! What changed in a handoff, at the level a reviewer reads it: its summary, confidence,
//! done and left lists, decisions and artifacts, against the revision before this one and
//! against the last approved handoff of the same task in the workspace (the work as someone
//! last accepted it). A read model for the handoff page and the API; the texts are diffed by
//! `render::diff`, the same code as the artifacts' diffs.

use crate::app::model::Stamp;
use crate::app::review::records::rev_file;
use crate::app::runtime::load::read_store;
use crate::app::state::Record;
use crate::app::App;
use crate::auth::Actor;
use crate::contract::{Handoff, Outcome};
use crate::render::diff::{diff, LineDiff};
use crate::store::Store;
use serde::Serialize;

/// A handoff's place among its revisions and what changed against the earlier versions.
#[derive(Debug, Clone, Serialize)]
pub struct Changes {
    /// The revision shown (the current one) and how many there are.
    pub revision: u32,
    pub revisions: u32,
    /// Against the revision before this one (absent for revision 1, or when its text is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<Comparison>,
    /// Against the last approved handoff of the same task in this workspace, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<Comparison>,
}

/// One comparison: what it is against, and the fields that differ (none: identical).
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The handoff compared against and its revision.
    pub key: String,
    pub revision: u32,
    pub fields: Vec<FieldChange>,
}

/// A field that differs. Every string is the agent's: plain text, for the page to escape.
#[derive(Debug, Clone, Serialize)]
pub struct FieldChange {
    /// `summary`, `confidence`, `completed`, `remaining`, `decisions` or `artifacts`.
    pub field: &'static str,
    /// For single values (confidence): before and after, `none` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// For lists: items added and removed; for artifacts also those whose content changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// For texts (summary): the line diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<LineDiff>,
}

impl FieldChange {
    fn new(field: &'static str) -> FieldChange {
        FieldChange {
            field,
            before: None,
            after: None,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            diff: None,
        }
    }
}

/// A version of a handoff to compare: its content and its artifacts' digests as received.
struct Version<'a> {
    handoff: &'a Handoff,
    /// `(path, sha256)`: the stamps when recorded, else what the handoff names.
    artifacts: Vec<(String, Option<String>)>,
}

impl<'a> Version<'a> {
    fn new(handoff: &'a Handoff, stamps: Option<&[Stamp]>) -> Version<'a> {
        let artifacts = match stamps {
            Some(s) => s
                .iter()
                .map(|s| (s.path.clone(), Some(s.sha256.clone())))
                .collect(),
            None => handoff
                .artifacts
                .iter()
                .map(|a| (a.path.clone(), a.sha256.clone()))
                .collect(),
        };
        Version { handoff, artifacts }
    }
}

impl App {
    /// What changed in handoff `key`, if the actor may see it.
    pub fn changes(&self, key: &str, actor: &Actor) -> Option<Changes> {
        let ws = self.served_for(key, actor)?;
        let st = ws.lock();
        let rec = st.records.get(key)?;
        let handoff = rec.handoff();
        let now = Version::new(&handoff, Some(&rec.meta.artifacts));
        let n = rec.meta.revision;
        let earlier: Option<Handoff> = (n > 1)
            .then(|| read_store(&ws.store, &Store::record(key, &rev_file(n - 1))))
            .flatten();
        let previous = earlier.as_ref().map(|h| Comparison {
            key: key.to_string(),
            revision: n - 1,
            fields: compare(
                &Version::new(h, rec.meta.previous_artifacts.as_deref()),
                &now,
            ),
        });
        let approved = last_approved(st.records.values().map(|r| &**r), rec).map(|a| Comparison {
            key: a.meta.key.clone(),
            revision: a.meta.revision,
            fields: compare(&Version::new(&a.handoff(), Some(&a.meta.artifacts)), &now),
        });
        Some(Changes {
            revision: n,
            revisions: n,
            previous,
            approved,
        })
    }
}

/// The latest other handoff of `rec`'s task that was approved.
fn last_approved<'r>(
    records: impl Iterator<Item = &'r Record>,
    rec: &Record,
) -> Option<&'r Record> {
    records
        .filter(|r| r.meta.task_id == rec.meta.task_id && r.meta.key != rec.meta.key)
        .filter_map(|r| {
            let d = r.decision.as_ref()?;
            (d.outcome == Outcome::Approved).then_some((&*d.at, r))
        })
        .max_by(|a, b| a.0.cmp(b.0))
        .map(|(_, r)| r)
}

/// The fields of `new` that differ from `old`, in the page's order.
fn compare(old: &Version, new: &Version) -> Vec<FieldChange> {
    let (o, n) = (old.handoff, new.handoff);
    let mut out = Vec::new();
    let (os, ns) = (
        o.summary.as_deref().unwrap_or(""),
        n.summary.as_deref().unwrap_or(""),
    );
    if os != ns {
        out.push(FieldChange {
            diff: Some(diff(os, ns)),
            ..FieldChange::new("summary")
        });
    }
    if o.confidence != n.confidence {
        let show = |c: Option<f64>| c.map_or("none".to_string(), |c| format!("{c:.2}"));
        out.push(FieldChange {
            before: Some(show(o.confidence)),
            after: Some(show(n.confidence)),
            ..FieldChange::new("confidence")
        });
    }
    for (field, a, b) in [
        ("completed", &o.completed, &n.completed),
        ("remaining", &o.remaining, &n.remaining),
        ("decisions", &o.decisions, &n.decisions),
    ] {
        let added = missing_from(b, a);
        let removed = missing_from(a, b);
        if !added.is_empty() || !removed.is_empty() {
            out.push(FieldChange {
                added,
                removed,
                ..FieldChange::new(field)
            });
        }
    }
    out.extend(artifacts(&old.artifacts, &new.artifacts));
    out
}

/// The items of `list` that `other` lacks, in `list`'s order.
fn missing_from(list: &[String], other: &[String]) -> Vec<String> {
    list.iter()
        .filter(|x| !other.contains(x))
        .cloned()
        .collect()
}

fn artifacts(
    old: &[(String, Option<String>)],
    new: &[(String, Option<String>)],
) -> Option<FieldChange> {
    let find = |list: &[(String, Option<String>)], p: &str| -> Option<Option<String>> {
        list.iter().find(|(q, _)| q == p).map(|(_, s)| s.clone())
    };
    let mut change = FieldChange::new("artifacts");
    for (path, sha) in new {
        match find(old, path) {
            None => change.added.push(path.clone()),
            Some(before) if before != *sha => change.changed.push(path.clone()),
            Some(_) => {}
        }
    }
    for (path, _) in old {
        if find(new, path).is_none() {
            change.removed.push(path.clone());
        }
    }
    let any = !(change.added.is_empty() && change.removed.is_empty() && change.changed.is_empty());
    any.then_some(change)
}

#[cfg(test)]
mod tests {
    use super::{compare, Version};
    use crate::contract::Handoff;
    use serde_json::json;

    fn handoff(v: serde_json::Value) -> Handoff {
        crate::contract::handoff::sample(v)
    }

    #[test]
    fn only_the_fields_that_differ_are_listed() {
        let sha = |c: char| c.to_string().repeat(64);
        let old = handoff(json!({ "summary": "one\ntwo", "confidence": 0.5,
            "completed": ["a"], "remaining": ["b", "c"], "decisions": ["d"],
            "artifacts": [{ "path": "x", "sha256": sha('1') }, { "path": "y", "sha256": sha('2') }] }));
        let new = handoff(json!({ "summary": "one\nthree", "confidence": 0.5,
            "completed": ["a", "b"], "remaining": ["c"], "decisions": ["d"],
            "artifacts": [{ "path": "x", "sha256": sha('3') }, { "path": "z", "sha256": sha('4') }] }));
        let fields = compare(&Version::new(&old, None), &Version::new(&new, None));
        let names: Vec<&str> = fields.iter().map(|f| f.field).collect();
        assert_eq!(names, ["summary", "completed", "remaining", "artifacts"]);
        let summary = fields[0].diff.as_ref().unwrap();
        assert_eq!((summary.added, summary.removed), (1, 1));
        assert_eq!(fields[1].added, ["b"]);
        assert_eq!(fields[2].removed, ["b"]);
        let a = &fields[3];
        assert_eq!(
            (&a.added, &a.removed, &a.changed),
            (
                &vec!["z".to_string()],
                &vec!["y".to_string()],
                &vec!["x".to_string()]
            )
        );
        assert!(compare(&Version::new(&new, None), &Version::new(&new, None)).is_empty());
    }
}
