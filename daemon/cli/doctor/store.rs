//! The doctor's check of the store in data_dir: every record folder against its manifest
//! (the same check as `baton repair --dry-run`), each damaged file a problem naming what can
//! rebuild it.

use super::{Finding, Outcome};
use baton::config::Config;
use baton::store::repair::{self, Fix};

pub fn check(config: &Config) -> Outcome {
    if config.cluster.is_some() {
        return Ok("the records are in PostgreSQL ([cluster])".into());
    }
    let dir = config.data_dir.join("workspaces");
    let found = baton::workspace::discover(&config.workspaces).ok();
    // Each under the id its records are kept by (a moved workspace's is not its path's).
    let records = baton::store::in_data_dir(&config.data_dir);
    let workspaces: Vec<_> = found
        .map(|f| f.workspaces)
        .unwrap_or_default()
        .into_iter()
        .map(|ws| baton::store::identity::known(&config.data_dir, &records, ws))
        .collect();
    let mut findings = Vec::new();
    // A whole store gone, of a workspace the daemon served (its audit anchor says so).
    let flushed = baton::audit::Ledger::read(&config.data_dir).unwrap_or_default();
    for ws in &workspaces {
        let anchored =
            |id: &str| baton::audit::anchored(&config.data_dir, id, |t| flushed.contains_key(t));
        if repair::known_without_store(&config.data_dir, ws, anchored) {
            let what = format!(
                "workspace \"{}\": {}; it is served read-only",
                ws.name,
                repair::store_removed().why()
            );
            let place = dir.join(baton::store::tag(ws)).display().to_string();
            let how = format!("restore data_dir from a backup (`baton restore`); or, to serve it afresh without its records, stop the daemon and run `baton repair --afresh {}`", ws.name);
            findings.push(Finding::problem(what, place, how));
        }
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return match findings.is_empty() {
            true => Ok("no workspace's store yet".into()),
            false => Err(findings),
        };
    };
    let mut stores = 0;
    for store in entries.flatten().filter(|e| e.path().is_dir()) {
        stores += 1;
        let tag = store.file_name().to_string_lossy().into_owned();
        let ws = workspaces.iter().find(|w| baton::store::tag(w) == tag);
        let offered = |d: &str, f: &str| match ws {
            Some(ws) => baton::app::published_copy_of(ws, d, f),
            None => Vec::new(),
        };
        let place = |file: &str| store.path().join(file).display().to_string();
        let plan = match repair::plan(&store.path(), &offered) {
            Ok(plan) => plan,
            Err(e) => {
                let what = format!("the store cannot be read: {e}");
                let fix = "give the daemon's user read access to data_dir";
                findings.push(Finding::problem(what, place(""), fix));
                continue;
            }
        };
        let name = ws.map_or(tag.clone(), |w| w.name.clone());
        for fix in &plan.fixes {
            let d = fix.damage();
            let what = format!("workspace \"{name}\": {}; it is served read-only", d.why());
            let how = match fix {
                Fix::Restore { from, .. } | Fix::RestoreFolder { from, .. } => {
                    format!("stop the daemon and run `baton repair`: it rebuilds it from {from}")
                }
                Fix::SetAside { .. } => {
                    "stop the daemon and run `baton repair`: it moves the file aside".into()
                }
                Fix::Cannot { what_to_do, .. } => what_to_do.clone(),
            };
            findings.push(Finding::problem(what, place(&d.file), how));
        }
    }
    match findings.is_empty() {
        true => Ok(format!(
            "{stores} workspace store(s), every record file as committed"
        )),
        false => Err(findings),
    }
}
