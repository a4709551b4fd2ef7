//! The doctor's check of the workspaces' memos in data_dir (see `baton::store::memo_check`):
//! each damaged one named with its workspace, its file, what its damage costs and what
//! becomes of it. A memo a person must write again is a problem; one the daemon rebuilds
//! itself is a warning (the daemon told it already, as `workspace.tampered`).

use super::{Finding, Outcome};
use baton::config::Config;
use baton::store::memo_check;
use std::collections::HashMap;
use std::path::Path;

pub fn check(config: &Config) -> Outcome {
    if config.cluster.is_some() {
        return Ok("the records are in PostgreSQL ([cluster])".into());
    }
    let dir = config.data_dir.join("workspaces");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok("no workspace's store yet".into());
    };
    let names = workspace_names(config);
    let mut findings = Vec::new();
    let mut stores = 0;
    for store in entries.flatten().filter(|e| e.path().is_dir()) {
        stores += 1;
        let name = name_of(&names, &store.path());
        for found in memo_check::check(&store.path()) {
            let kind = found.kind;
            let what = format!(
                "workspace {name}: its memo {} is damaged ({}): {}",
                kind.file, found.why, kind.costs
            );
            let place = store.path().join(kind.file).display().to_string();
            findings.push(match kind.needs_a_person {
                true => Finding::problem(what, place, kind.remedy),
                false => Finding::warning(what, place, kind.remedy),
            });
        }
    }
    match findings.is_empty() {
        true => Ok(format!("{stores} workspace store(s), every memo sound")),
        false => Err(findings),
    }
}

/// The configured workspaces' names, by the id their records are kept under (a moved
/// workspace's is not its path's).
fn workspace_names(config: &Config) -> HashMap<String, String> {
    let records = baton::store::in_data_dir(&config.data_dir);
    baton::workspace::discover(&config.workspaces)
        .map(|f| f.workspaces)
        .unwrap_or_default()
        .into_iter()
        .map(|ws| baton::store::identity::known(&config.data_dir, &records, ws))
        .map(|ws| (baton::store::tag(&ws), ws.name))
        .collect()
}

/// The workspace whose records `store` keeps, for people: its name, or the store's id when
/// no configured folder is it (a workspace deleted, or no longer configured).
fn name_of(names: &HashMap<String, String>, store: &Path) -> String {
    let tag = store.file_name().unwrap_or_default().to_string_lossy();
    match names.get(tag.as_ref()) {
        Some(name) => format!("\"{name}\""),
        None => format!("(not configured: store {tag})"),
    }
}
