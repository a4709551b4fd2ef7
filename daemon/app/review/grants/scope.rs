//! A grant's scope: what a later handoff must share with the one a reviewer approved for the
//! grant to approve it too. Derived from that handoff, never typed freely (only the artifact
//! glob may be given, and it must cover the approved handoff's own artifacts), so a reviewer
//! sees, before granting, exactly how far "similar" reaches. Pure: no I/O, no clock.

use crate::contract::Handoff;
use glob::{MatchOptions, Pattern};
use serde::{Deserialize, Serialize};

/// What a later handoff must match. Every member narrows: a handoff is covered only when all
/// hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// A scope with a field this baton does not know (one a newer node added) is refused, never
// read as the wider scope without it and saved back so.
#[serde(deny_unknown_fields)]
pub struct GrantScope {
    /// The workspace (its name).
    pub workspace: String,
    /// The agent proven to have sent it (an upload with that agent's token,
    /// `crate::policy::proof`); a claimed `from_agent` proves nothing.
    pub sender: String,
    /// The route it was put on; absent: it matched no route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Its trigger (`completion`, ...); absent: it named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Its labels, sorted: a later handoff must carry exactly these.
    pub labels: Vec<String>,
    /// A glob every artifact path must match (`*` stays within a folder, `**` crosses them);
    /// absent: the approved handoff had no artifacts, and a covered one may have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<String>,
    /// At most this many artifacts.
    pub max_artifacts: usize,
    /// No artifact larger than this (bytes): the largest of the approved handoff.
    pub max_artifact_bytes: u64,
    /// Its confidence at least this (the approved handoff's); absent: it stated none, and any
    /// (or none) is covered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_confidence: Option<f64>,
}

/// A handoff as a scope sees it.
pub struct Candidate<'a> {
    pub workspace: &'a str,
    /// The agent proven to have sent it, if any.
    pub sender: Option<String>,
    pub route: Option<&'a str>,
    pub handoff: std::borrow::Cow<'a, Handoff>,
    /// Its artifacts as received: path and size.
    pub artifacts: Vec<(String, u64)>,
}

/// How artifact globs match: `*` and `?` never cross a `/`, so `docs/*` is one folder.
const MATCH: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl GrantScope {
    /// The scope derived from the handoff `c` being approved, with `paths` as the artifact glob
    /// if the reviewer gave one (else the narrowest folder glob holding its artifacts).
    /// Refused: an unproven sender, an artifact without its sha256, a glob that does not
    /// parse or leaves out one of its artifacts.
    pub fn of(c: &Candidate, paths: Option<&str>) -> Result<GrantScope, String> {
        let Some(sender) = &c.sender else {
            return Err(format!(
                "its sender is not proven: only a revision uploaded with one agent's token \
                 (its artifacts, PUT /api/v1/workspaces/{ws}/inbox/PATH, or their sha256 in \
                 handoff.json; then handoff.json, PUT /api/v1/workspaces/{ws}/handoff) names \
                 who sent it, and a grant covers one proven sender; approve it without a grant",
                ws = c.workspace
            ));
        };
        if let Some(unhashed) = unhashed(c) {
            return Err(format!(
                "its artifact \"{unhashed}\" has no sha256: a grant approves only artifacts \
                 whose bytes their sender declared in handoff.json (a later handoff's bytes are \
                 then held to them at receipt), not whatever was uploaded last; have \
                 the agent give every artifact its sha256, or approve it without a grant"
            ));
        }
        let paths = match paths.map(str::trim) {
            Some("") | None => folder_glob(&c.artifacts),
            Some(glob) => {
                let pattern = Pattern::new(glob)
                    .map_err(|e| format!("paths \"{glob}\" is not a glob: {e}"))?;
                if let Some((outside, _)) = c
                    .artifacts
                    .iter()
                    .find(|(p, _)| !pattern.matches_with(p, MATCH))
                {
                    return Err(format!(
                        "paths \"{glob}\" leaves out this handoff's own artifact \"{outside}\"; \
                         give a glob that covers what you approve"
                    ));
                }
                Some(glob.to_string())
            }
        };
        Ok(GrantScope {
            workspace: c.workspace.to_string(),
            sender: sender.clone(),
            route: c.route.map(str::to_string),
            trigger: c.handoff.trigger.map(|t| t.as_str().to_string()),
            labels: sorted(&c.handoff.labels),
            paths,
            max_artifacts: c.artifacts.len(),
            max_artifact_bytes: c.artifacts.iter().map(|(_, s)| *s).max().unwrap_or(0),
            min_confidence: c.handoff.confidence,
        })
    }

    /// Why `c` is outside this scope, or `None` when it is covered.
    pub fn misses(&self, c: &Candidate) -> Option<&'static str> {
        if c.workspace != self.workspace {
            return Some("another workspace");
        }
        if c.sender.as_deref() != Some(self.sender.as_str()) {
            return Some("another (or no proven) sender");
        }
        // The proof covers handoff.json; an artifact's bytes only through its declared hash
        // (checked at receipt), so an undeclared one may be anyone's on the share.
        if unhashed(c).is_some() {
            return Some("an artifact without its sha256");
        }
        if c.route != self.route.as_deref() {
            return Some("another route");
        }
        if c.handoff.trigger.map(|t| t.as_str()) != self.trigger.as_deref() {
            return Some("another trigger");
        }
        if sorted(&c.handoff.labels) != self.labels {
            return Some("other labels");
        }
        if c.artifacts.len() > self.max_artifacts {
            return Some("more artifacts");
        }
        if c.artifacts
            .iter()
            .any(|(_, s)| *s > self.max_artifact_bytes)
        {
            return Some("a larger artifact");
        }
        let pattern = self.paths.as_deref().and_then(|g| Pattern::new(g).ok());
        let inside = |p: &str| pattern.as_ref().is_some_and(|g| g.matches_with(p, MATCH));
        if c.artifacts.iter().any(|(p, _)| !inside(p)) {
            return Some("an artifact outside the paths");
        }
        if let Some(min) = self.min_confidence {
            if c.handoff.confidence.is_none_or(|have| have < min) {
                return Some("a lower confidence");
            }
        }
        None
    }
}

/// The first artifact of `c`'s handoff that declares no sha256.
fn unhashed<'c>(c: &'c Candidate) -> Option<&'c str> {
    c.handoff
        .artifacts
        .iter()
        .find(|a| a.sha256.is_none())
        .map(|a| a.path.as_str())
}

fn sorted(labels: &[String]) -> Vec<String> {
    let mut l = labels.to_vec();
    l.sort();
    l.dedup();
    l
}

/// The narrowest folder glob that holds every artifact: `docs/api/**/*` when they all lie
/// under `docs/api/`, `*` when they all lie at the top, `**/*` when they are spread across
/// the top and folders. None without artifacts.
fn folder_glob(artifacts: &[(String, u64)]) -> Option<String> {
    let dirs: Vec<Vec<&str>> = artifacts
        .iter()
        .map(|(p, _)| {
            let mut parts: Vec<&str> = p.split('/').collect();
            parts.pop();
            parts
        })
        .collect();
    let first = dirs.first()?;
    let mut common = first.len();
    for d in &dirs[1..] {
        common = common.min(first.iter().zip(d).take_while(|(a, b)| a == b).count());
    }
    let all_top = dirs.iter().all(Vec::is_empty);
    Some(match (common, all_top) {
        (_, true) => "*".to_string(),
        (0, false) => "**/*".to_string(),
        (n, false) => {
            let mut folder = String::new();
            for part in &first[..n] {
                folder.push_str(&Pattern::escape(part));
                folder.push('/');
            }
            format!("{folder}**/*")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handoff() -> Handoff {
        serde_json::from_value(serde_json::json!({
            "handoff_version": "1.0", "task_id": "t", "from_agent": "bot",
            "trigger": "completion", "confidence": 0.9, "labels": ["docs"]
        }))
        .unwrap()
    }

    /// `h` with `artifacts`, each declaring a sha256.
    fn candidate<'a>(h: &'a Handoff, artifacts: &[(&str, u64)]) -> Candidate<'a> {
        let mut h = h.clone();
        h.artifacts = artifacts
            .iter()
            .map(|(p, _)| {
                serde_json::from_value(serde_json::json!({"path": p, "sha256": "ab".repeat(32)}))
                    .unwrap()
            })
            .collect();
        Candidate {
            workspace: "alpha",
            sender: Some("bot".into()),
            route: Some("docs"),
            handoff: std::borrow::Cow::Owned(h),
            artifacts: artifacts.iter().map(|(p, s)| (p.to_string(), *s)).collect(),
        }
    }

    #[test]
    fn an_artifact_without_its_sha256_is_neither_granted_nor_covered() {
        let h = handoff();
        let hashed = candidate(&h, &[("docs/a.md", 10), ("docs/b.md", 10)]);
        let scope = GrantScope::of(&hashed, None).unwrap();
        assert_eq!(scope.misses(&hashed), None);
        let mut bare = candidate(&h, &[("docs/a.md", 10), ("docs/b.md", 10)]);
        bare.handoff.to_mut().artifacts[1].sha256 = None;
        let e = GrantScope::of(&bare, None).unwrap_err();
        assert!(e.contains("\"docs/b.md\" has no sha256"), "{e}");
        assert_eq!(scope.misses(&bare), Some("an artifact without its sha256"));
    }

    #[test]
    fn the_derived_glob_is_the_common_folder() {
        let h = handoff();
        let c = candidate(&h, &[("docs/api/a.md", 10), ("docs/api/x/b.md", 20)]);
        let scope = GrantScope::of(&c, None).unwrap();
        assert_eq!(scope.paths.as_deref(), Some("docs/api/**/*"));
        assert_eq!(scope.max_artifact_bytes, 20);
        assert_eq!(scope.misses(&c), None);
        let top = candidate(&h, &[("a.md", 1)]);
        assert_eq!(
            GrantScope::of(&top, None).unwrap().paths.as_deref(),
            Some("*")
        );
    }

    #[test]
    fn a_scope_misses_what_differs() {
        let h = handoff();
        let c = candidate(&h, &[("docs/a.md", 100)]);
        let scope = GrantScope::of(&c, None).unwrap();
        let outside = candidate(&h, &[("src/a.rs", 100)]);
        assert_eq!(
            scope.misses(&outside),
            Some("an artifact outside the paths")
        );
        let larger = candidate(&h, &[("docs/a.md", 101)]);
        assert_eq!(scope.misses(&larger), Some("a larger artifact"));
        let deeper = candidate(&h, &[("docs/sub/a.md", 50)]);
        assert_eq!(scope.misses(&deeper), None);
        let mut other = candidate(&h, &[("docs/a.md", 1)]);
        other.sender = Some("intruder".into());
        assert_eq!(scope.misses(&other), Some("another (or no proven) sender"));
        let mut h2 = handoff();
        h2.confidence = Some(0.5);
        assert_eq!(
            scope.misses(&candidate(&h2, &[("docs/a.md", 1)])),
            Some("a lower confidence")
        );
    }

    #[test]
    fn a_given_glob_must_cover_the_approved_artifacts() {
        let h = handoff();
        let c = candidate(&h, &[("docs/a.md", 1), ("src/b.rs", 1)]);
        let e = GrantScope::of(&c, Some("docs/*")).unwrap_err();
        assert!(e.contains("\"src/b.rs\""), "{e}");
        let mut unproven = candidate(&h, &[]);
        unproven.sender = None;
        assert!(GrantScope::of(&unproven, None)
            .unwrap_err()
            .contains("not proven"));
    }
}
