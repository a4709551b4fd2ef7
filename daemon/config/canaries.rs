//! `[canaries]`: known-bad example handoffs the daemon files, now and then, into reviewers'
//! queues, to measure whether they read what they approve. The operator writes the examples:
//! one folder each under `dir`, holding `handoff.json`, the artifacts it names (at the paths
//! it gives, such as `inbox/patch.diff`) and `canary.toml` with `why`, what is wrong with it
//! (shown to a reviewer who approves it). Everything is read and checked at load, so a
//! mistake stops `baton serve` with the file and the fix named, not a filing hours later.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanaries {
    /// The folder of examples, relative to the configuration file.
    pub dir: PathBuf,
    /// One canary for every `every` handoffs received in a workspace they go to.
    pub every: u32,
    /// The workspaces (by name) they go to; empty or absent: every workspace.
    #[serde(default)]
    pub workspaces: Vec<String>,
}

/// `canary.toml` in an example's folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExample {
    why: String,
}

/// The checked table.
#[derive(Debug, Clone)]
pub struct Canaries {
    pub dir: PathBuf,
    pub every: u32,
    pub workspaces: Vec<String>,
    /// The examples, by folder name (sorted).
    pub examples: Vec<Example>,
}

/// One known-bad example, as checked at load.
#[derive(Debug, Clone)]
pub struct Example {
    /// Its folder's name: how events and logs name it (never shown to the reviewer before
    /// the decision).
    pub name: String,
    pub folder: PathBuf,
    /// What is wrong with it.
    pub why: String,
    /// The artifact paths its handoff.json names, relative to `folder`.
    pub artifacts: Vec<String>,
}

/// Longest `why`: it is shown in a decision's answer and on a page.
const MAX_WHY: usize = 2000;

impl Canaries {
    /// Whether workspace `name` gets canaries.
    pub fn goes_to(&self, name: &str) -> bool {
        self.workspaces.is_empty() || self.workspaces.iter().any(|w| w == name)
    }
}

/// Reads and checks the examples under `raw.dir` (taken from `base`).
pub fn resolve(
    raw: RawCanaries,
    base: &Path,
    limits: &crate::contract::Limits,
) -> Result<Canaries, String> {
    if raw.every == 0 {
        return Err("canaries.every must be 1 or more (one canary per that many handoffs)".into());
    }
    if let Some(blank) = raw.workspaces.iter().find(|w| w.trim().is_empty()) {
        return Err(format!(
            "canaries.workspaces: \"{blank}\" is not a workspace name"
        ));
    }
    let dir = base.join(&raw.dir);
    let entries = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "canaries.dir: cannot read {}: {e}; make the folder, with one folder per example (handoff.json, canary.toml, its artifacts)",
            dir.display()
        )
    })?;
    let mut folders: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(format!(
            "canaries.dir: {} holds no example; add a folder with handoff.json, canary.toml (why = \"...\") and its artifacts",
            dir.display()
        ));
    }
    let examples = folders
        .iter()
        .map(|f| example(f, limits))
        .collect::<Result<_, _>>()?;
    Ok(Canaries {
        dir,
        every: raw.every,
        workspaces: raw.workspaces,
        examples,
    })
}

fn example(folder: &Path, limits: &crate::contract::Limits) -> Result<Example, String> {
    let at = |file: &str| folder.join(file).display().to_string();
    let read = |file: &str| {
        std::fs::read(folder.join(file))
            .map_err(|e| format!("canaries: cannot read {}: {e}", at(file)))
    };
    let note: RawExample = std::str::from_utf8(&read("canary.toml")?)
        .map_err(|e| e.to_string())
        .and_then(|t| toml::from_str(t).map_err(|e| e.to_string()))
        .map_err(|e| {
            format!(
                "canaries: {}: {e}; it holds why = \"what is wrong with this handoff\"",
                at("canary.toml")
            )
        })?;
    let why = note.why.trim().to_string();
    if why.is_empty() || why.chars().count() > MAX_WHY {
        return Err(format!(
            "canaries: {}: why must say what is wrong with the handoff, in 1 to {MAX_WHY} characters",
            at("canary.toml")
        ));
    }
    let accepted =
        crate::contract::validate::handoff(&read("handoff.json")?, limits).map_err(|r| {
            let problems: Vec<String> = r
                .problems
                .iter()
                .map(|p| format!("{} {}", p.pointer, p.message))
                .collect();
            format!(
                "canaries: {} is not a valid handoff: {}",
                at("handoff.json"),
                problems.join("; ")
            )
        })?;
    let artifacts: Vec<String> = accepted
        .doc
        .artifacts
        .iter()
        .map(|a| a.path.clone())
        .collect();
    for path in &artifacts {
        let inside = Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside || !folder.join(path).is_file() {
            return Err(format!(
                "canaries: {} names artifact \"{path}\"; put that file at {} (a path inside the example's folder)",
                at("handoff.json"),
                folder.join(path).display()
            ));
        }
    }
    let name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Example {
        name,
        folder: folder.to_path_buf(),
        why,
        artifacts,
    })
}
