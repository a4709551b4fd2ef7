//! `baton doctor`'s check of the marks of how far each workspace's audit log was handed on to
//! the outbox (`data_dir/anchors/<tag>.handed.json`, see `baton::audit::handed`). A damaged
//! mark is never trusted: the next start hands on again the events after the last one the
//! outbox holds (receivers see repeated ids); one the daemon found damaged is kept beside it
//! (`.handed.json.damaged`) until someone has looked.

use super::{Finding, Outcome};
use baton::audit::handed::{parse, DAMAGED_SUFFIX};
use baton::config::Config;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

const MARK: &str = ".handed.json";

pub fn marks(config: &Config) -> Outcome {
    let dir = config.data_dir.join("anchors");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(_) => return Ok("none yet".into()),
    };
    // Each mark's workspace (by tag, a moved workspace's by its id), to check the point it
    // names is in its log.
    let records = baton::store::in_data_dir(&config.data_dir);
    let logs: HashMap<String, PathBuf> = baton::workspace::discover(&config.workspaces)
        .map(|found| found.workspaces)
        .unwrap_or_default()
        .into_iter()
        .map(|ws| match config.cluster {
            None => baton::store::identity::known(&config.data_dir, &records, ws),
            Some(_) => ws,
        })
        .map(|ws| (baton::store::tag(&ws), ws.events_path()))
        .collect();
    let mut findings = Vec::new();
    let mut good = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(&format!("{MARK}{DAMAGED_SUFFIX}")) {
            let what = "a damaged mark of which events reached the outbox was found by the daemon and set aside; the events after the last one the outbox held were sent again (receivers may have seen repeated ids)";
            let fix = format!(
                "look at what damaged it (disk, a power cut, a hand edit), then remove {}",
                path.display()
            );
            findings.push(Finding::warning(what, path.display().to_string(), fix));
        } else if name.ends_with(MARK) {
            let read = std::fs::read(&path).map_err(|e| e.to_string());
            let tag = name.trim_end_matches(MARK);
            let held = |mark: baton::audit::Mark| match logs.get(tag) {
                Some(log) => holds(log, &mark),
                None => Ok(()),
            };
            match read.and_then(|bytes| parse(&bytes)).and_then(held) {
                Ok(()) => good += 1,
                Err(why) => {
                    let what = format!(
                        "the mark of which events reached the outbox is damaged ({why}); the next start sends again the events after the last one the outbox holds"
                    );
                    let fix = "nothing to repair: start the daemon (it sets the file aside and writes a good mark); look at what damaged it";
                    findings.push(Finding::problem(what, path.display().to_string(), fix));
                }
            }
        }
    }
    match findings.is_empty() {
        true => Ok(format!("{good} mark(s) readable")),
        false => Err(findings),
    }
}

/// `Ok` if the log at `log` holds the point `mark` names: a line ending at its length whose
/// sha256 is its hash (or it names the start of an empty log).
fn holds(log: &Path, mark: &baton::audit::Mark) -> Result<(), String> {
    let Some(end) = mark.len.filter(|l| *l > 0) else {
        return Ok(());
    };
    let not_held = || {
        format!(
            "it names event {} ending at byte {end}, which {} does not hold",
            mark.seq,
            log.display()
        )
    };
    let mut file = std::fs::File::open(log).map_err(|_| not_held())?;
    // The last line before `end`, read back at most 1 MiB.
    let start = end.saturating_sub(1 << 20);
    let mut bytes = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start))
        .and_then(|_| file.read_exact(&mut bytes))
        .map_err(|_| not_held())?;
    let body = bytes.strip_suffix(b"\n").ok_or_else(not_held)?;
    let line = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => &body[i + 1..],
        None if start == 0 => body,
        None => return Ok(()),
    };
    match baton::contract::validate::sha256_hex(line) == mark.hash {
        true => Ok(()),
        false => Err(not_held()),
    }
}
