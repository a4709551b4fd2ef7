//! `baton repair [--dry-run] [--afresh WORKSPACE] [--config FILE]`: checks every workspace's store in data_dir
//! against its folders' manifests and rebuilds each damaged file from a source the store can
//! prove (bytes whose sha256 is the one it committed: the records' snapshot, the workspace's
//! published copy), keeping the damaged file as evidence; a file the store never committed is
//! moved aside. What nothing proves is said with what to do, and left as it is. A damaged memo
//! (`baton::store::memo_check`) is said with what it costs and what the daemon does about it;
//! the repair does not rewrite memos. With
//! `--dry-run` it only says. Run as the daemon's user, with the daemon stopped (the repair holds
//! data_dir's lock while it runs; a dry run only reads, and runs beside the daemon); start the daemon afterwards to serve the workspaces again.

use anyhow::Context;
use baton::config::Config;
use baton::store::repair::{self, Fix, Plan};
use baton::workspace::Workspace;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn repair(
    dry_run: bool,
    afresh: Option<&str>,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    if config.cluster.is_some() {
        anyhow::bail!(
            "{}: [cluster]: the records are rows in PostgreSQL, which keeps their integrity; \
             `baton repair` mends the embedded store in data_dir only",
            config.source_name
        );
    }
    let data_dir = &config.data_dir;
    // Held while the files are rewritten: a daemon running meanwhile would serve from memory
    // what the repair changes under it. A dry run only reads.
    let _lock = match dry_run {
        true => None,
        false => hold(data_dir)?,
    };
    let found = baton::workspace::discover(&config.workspaces)
        .with_context(|| format!("{}: cannot list the workspaces", config.source_name))?;
    // Each under the id its records are kept by (a moved workspace's is not its path's).
    let records = baton::store::in_data_dir(data_dir);
    let by_tag: HashMap<String, Workspace> = found
        .workspaces
        .into_iter()
        .map(|ws| baton::store::identity::known(data_dir, &records, ws))
        .map(|ws| (baton::store::tag(&ws), ws))
        .collect();
    let mut tally = Tally::default();
    if let Some(name) = afresh {
        return start_afresh(data_dir, &by_tag, name, dry_run);
    }
    say_gone(data_dir, &by_tag, &mut tally)?;
    for store in stores(data_dir)? {
        let tag = store
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let ws = by_tag.get(&tag);
        let offered = |dir: &str, file: &str| match ws {
            Some(ws) => baton::app::published_copy_of(ws, dir, file),
            None => Vec::new(),
        };
        let plan = repair::plan(&store, &offered)
            .with_context(|| format!("{}: cannot check the store", store.display()))?;
        let name = ws.map_or_else(
            || format!("(not configured: store {tag})"),
            |w| format!("\"{}\"", w.name),
        );
        say(&name, &plan, dry_run, &mut tally);
        say_memos(&name, &store, &mut tally);
        let nothing = plan.fixes.is_empty() && plan.interrupted.is_empty();
        if !dry_run && !nothing {
            let kept = repair::apply(&store, &plan)
                .with_context(|| format!("{}: cannot repair", store.display()))?;
            for path in kept {
                out!(
                    "baton repair: {name}: kept the damaged file as {}",
                    path.display()
                );
            }
        }
    }
    Ok(tally.finish(dry_run))
}

/// The configured workspaces whose whole store is gone while data_dir proves the daemon
/// served them (`repair::known_without_store`), by name.
fn gone<'a>(
    data_dir: &Path,
    by_tag: &'a HashMap<String, Workspace>,
) -> anyhow::Result<Vec<&'a Workspace>> {
    let flushed = baton::audit::Ledger::read(data_dir)
        .with_context(|| format!("{}: cannot read the audit anchors", data_dir.display()))?;
    let mut out: Vec<&Workspace> = by_tag
        .values()
        .filter(|ws| {
            let anchored =
                |id: &str| baton::audit::anchored(data_dir, id, |t| flushed.contains_key(t));
            repair::known_without_store(data_dir, ws, anchored)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Says each workspace whose whole store is gone: nothing in data_dir rebuilds it.
fn say_gone(
    data_dir: &Path,
    by_tag: &HashMap<String, Workspace>,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    for ws in gone(data_dir, by_tag)? {
        tally.damaged += 1;
        tally.cannot += 1;
        let store = data_dir.join("workspaces").join(baton::store::tag(ws));
        out!(
            "baton repair: \"{}\": {}: {}",
            ws.name,
            store.display(),
            repair::store_removed().why()
        );
        out!(
            "    cannot be rebuilt: restore data_dir from a backup (`baton restore`); or, to serve it afresh without its records, `baton repair --afresh {}`",
            ws.name
        );
    }
    Ok(())
}

/// `--afresh NAME`: the workspace `name`, whose whole store is gone, given an empty one and
/// its archive moved aside; refused for any other workspace.
fn start_afresh(
    data_dir: &Path,
    by_tag: &HashMap<String, Workspace>,
    name: &str,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let Some(ws) = gone(data_dir, by_tag)?.into_iter().find(|w| w.name == name) else {
        anyhow::bail!(
            "--afresh {name}: no configured workspace of that name has lost its store (one whose store is in data_dir is mended by `baton repair`; one the daemon never served starts afresh by itself)"
        );
    };
    if dry_run {
        out!("baton repair: \"{name}\": would make an empty store and move .baton/handoffs/ aside; nothing changed (--dry-run)");
        return Ok(ExitCode::SUCCESS);
    }
    let aside = repair::afresh(data_dir, ws)
        .with_context(|| format!("\"{name}\": cannot start the store afresh"))?;
    // No record, no afresh: the empty store is taken back, so the workspace stays damage
    // (served read-only, named on /healthz) until the repair can say in its log what it did.
    if let Err(e) = log_afresh(data_dir, ws, aside.as_deref()) {
        let store = data_dir.join("workspaces").join(baton::store::tag(ws));
        let undone = std::fs::remove_dir_all(&store);
        return Err(e).with_context(|| {
            format!(
                "\"{name}\": cannot log workspace.started_afresh in its audit log, so it is not started afresh (the empty store {} {}); mend what the error names and run `baton repair --afresh {name}` again",
                store.display(),
                match undone {
                    Ok(()) => "was removed again".to_string(),
                    Err(e) => format!("could not be removed again: {e}; remove it by hand"),
                }
            )
        });
    }
    match aside {
        Some(aside) => out!(
            "baton repair: \"{name}\": its published copies moved aside to {} (kept, never loaded)",
            aside.display()
        ),
        None => out!("baton repair: \"{name}\": no published copies to move aside"),
    }
    out!(
        "baton repair: \"{name}\": an empty store made; start the daemon: it serves the workspace afresh (its handoff.json received as new; its audit log carries on)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Logs `workspace.started_afresh` in the workspace's audit log: who (the OS user running
/// the repair), when, and what was set aside where. The log is anchored in data_dir (the anchor
/// and the ledger of flushed anchors updated here, as the daemon does), so the record cannot
/// be taken out of the workspace's log unseen. Handed on to the outbox by the daemon's next
/// start (the mark of what was handed on is left behind it).
fn log_afresh(data_dir: &Path, ws: &Workspace, aside: Option<&Path>) -> anyhow::Result<()> {
    use baton::audit::{Anchors, AuditLog, Ledger};
    use baton::events::{Event, EventType};
    let ledger = Ledger::open(data_dir)
        .with_context(|| format!("{}: cannot read the audit anchors", data_dir.display()))?;
    let anchors = Anchors::for_workspace(data_dir, ws);
    let anchors = anchors.clone().with_flushed(ledger.newest(&anchors.tag));
    let log = AuditLog::open(ws, anchors.clone())
        .with_context(|| format!("{}: cannot open the audit log", ws.events_path().display()))?;
    let uid = unsafe { libc::getuid() };
    let data = serde_json::json!({
        "by": os_user(uid),
        "uid": uid,
        "command": format!("baton repair --afresh {}", ws.name),
        "store": data_dir.join("workspaces").join(&anchors.tag).display().to_string(),
        "archive": ws.handoffs_dir().display().to_string(),
        "set_aside": aside.map(|p| p.display().to_string()),
        "why": "the workspace's whole store in data_dir was gone; its records (pending handoffs, approvals, decisions) are not served, and its handoff.json is received as new",
    });
    let event = Event::new(EventType::WorkspaceStartedAfresh, &ws.name, None, data);
    // `false`: the daemon hands it on at its next start, as any event logged and not sent.
    log.append_then(std::slice::from_ref(&event), |_| false)
        .with_context(|| format!("{}: cannot append", ws.events_path().display()))?;
    if let Some(anchor) = log.anchor_to_flush() {
        ledger
            .append(&[(anchors.tag.clone(), anchor)])
            .with_context(|| format!("{}: cannot flush the audit anchor", data_dir.display()))?;
    }
    out!(
        "baton repair: \"{}\": logged workspace.started_afresh in {} (by {})",
        ws.name,
        ws.events_path().display(),
        event.data["by"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// The name of the OS user `uid` (from the password database, not `$USER`, which the caller
/// sets), or `uid <n>` when it has none.
fn os_user(uid: libc::uid_t) -> String {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `pwd`, `buf` and `found` outlive the call, and `buf.len()` is its size.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return format!("uid {uid}");
    }
    // SAFETY: `pw_name` points into `buf`, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_string_lossy().into_owned()
}

/// What was found, across workspaces.
#[derive(Default)]
struct Tally {
    damaged: usize,
    fixable: usize,
    cannot: usize,
    /// Damaged memos: never rewritten here (see `say_memos`).
    memos: usize,
}

impl Tally {
    fn finish(&self, dry_run: bool) -> ExitCode {
        let (did, done) = match dry_run {
            true => ("can be rebuilt", "nothing changed (--dry-run)"),
            false => ("rebuilt", "start the daemon to serve the workspaces again"),
        };
        match self.damaged {
            0 => out!("baton repair: no damaged store file"),
            n => out!(
                "baton repair: {n} damaged store file(s): {} {did}, {} cannot be; {done}",
                self.fixable,
                self.cannot
            ),
        }
        if self.memos > 0 {
            out!(
                "baton repair: {} damaged memo(s), left as they are: the daemon rebuilds those it can when it next reads them (said above per memo)",
                self.memos
            );
        }
        // A damaged memo does not fail the repair: the daemon serves the workspace with it.
        match self.cannot {
            0 => ExitCode::SUCCESS,
            _ => ExitCode::from(1),
        }
    }
}

/// Prints what `plan` says of one workspace's store.
fn say(name: &str, plan: &Plan, dry_run: bool, tally: &mut Tally) {
    if plan.unchecked {
        out!("baton repair: {name}: a store of an older version, without manifests: the daemon's next start gives it them; nothing to check before");
    }
    for dir in &plan.interrupted {
        out!(
            "baton repair: {name}: handoffs/{dir}: a change a crash interrupted; {}",
            match dry_run {
                true => "finished by the repair or the next start, then checked",
                false => "finished; run `baton repair` again to check it",
            }
        );
    }
    for fix in &plan.fixes {
        tally.damaged += 1;
        let d = fix.damage();
        out!("baton repair: {name}: {}: {}", d.file, d.why());
        match fix {
            Fix::Restore { from, .. } | Fix::RestoreFolder { from, .. } => {
                tally.fixable += 1;
                let verb = if dry_run { "would rebuild" } else { "rebuilt" };
                out!("    {verb} from {from} (its sha256 is the one the store committed)");
            }
            Fix::SetAside { .. } => {
                tally.fixable += 1;
                let verb = if dry_run { "would move" } else { "moved" };
                out!(
                    "    {verb} aside into data_dir/workspaces/<store>/{}/ (kept as evidence)",
                    repair::SET_ASIDE
                );
            }
            Fix::Cannot { what_to_do, .. } => {
                tally.cannot += 1;
                out!("    cannot be rebuilt: {what_to_do}");
            }
        }
    }
}

/// Says each damaged memo of `store` (see `baton::store::memo_check`) and what becomes of
/// it. A memo has no committed copy to prove bytes against, so the repair rewrites none: the
/// daemon rebuilds each it can from the records or the audit log when it next reads it, and
/// says so then (`workspace.tampered`); the owner waits for an admin.
fn say_memos(name: &str, store: &Path, tally: &mut Tally) {
    for found in baton::store::memo_check::check(store) {
        tally.memos += 1;
        let kind = found.kind;
        out!(
            "baton repair: {name}: {} (a memo): {}; {}",
            kind.file,
            found.why,
            kind.costs
        );
        out!("    not rewritten by `baton repair`: {}", kind.remedy);
    }
}

/// The workspaces' store folders in data_dir, sorted.
fn stores(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = data_dir.join("workspaces");
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.with_context(|| format!("{}: cannot list", dir.display()))?,
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    Ok(out)
}

/// data_dir's daemon lock, or why the repair may not run: a daemon holds it.
fn hold(data_dir: &Path) -> anyhow::Result<Option<std::fs::File>> {
    use fs4::fs_std::FileExt;
    // data_dir itself first: daemon.lock may have been removed under a running daemon. Held
    // until this process ends.
    if data_dir.is_dir() {
        match super::serve::one_daemon::lock_folder(data_dir)? {
            Ok(folder) => std::mem::forget(folder),
            Err(pid) => anyhow::bail!(
                "a baton daemon (pid {pid}) runs on data_dir {}: stop it, run `baton repair`, \
                 then start it again (`baton repair --dry-run` only reads, and runs beside it)",
                data_dir.display()
            ),
        }
    }
    let path = data_dir.join("daemon.lock");
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
    {
        Ok(file) => file,
        // No daemon ever ran on it: nothing to hold.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
    };
    if !FileExt::try_lock_exclusive(&file)? {
        let pid = std::fs::read_to_string(&path).unwrap_or_default();
        anyhow::bail!(
            "a baton daemon (pid {}) runs on data_dir {}: stop it, run `baton repair`, then start \
             it again (`baton repair --dry-run` only reads, and runs beside it)",
            pid.trim(),
            data_dir.display()
        );
    }
    Ok(Some(file))
}
