//! `baton doctor [--config FILE]`: checks an installation the way the daemon will meet it and
//! says, for each thing wrong, what it is, where, and what to do. Nothing is changed: the
//! checks only read (and make and remove one probe file in data_dir to prove it writable).

mod checks;
mod handed;
mod memos;
mod store;
use baton::config::Config;
use std::path::Path;
use std::process::ExitCode;

/// How bad a finding is: a problem stops the daemon (or loses work); a warning is worth
/// fixing but the daemon runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Problem,
    Warning,
}

/// One thing found wrong: what, where (a file, a key, an address), and the fix.
pub struct Finding {
    pub severity: Severity,
    pub what: String,
    pub place: String,
    pub fix: String,
}

impl Finding {
    pub fn problem(
        what: impl Into<String>,
        place: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Problem,
            what: what.into(),
            place: place.into(),
            fix: fix.into(),
        }
    }
    pub fn warning(
        what: impl Into<String>,
        place: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::problem(what, place, fix)
        }
    }
}

/// What one check says: the findings, or a line saying what held.
pub type Outcome = Result<String, Vec<Finding>>;

pub fn doctor(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = match Config::load(config) {
        Ok(config) => config,
        Err(e) => {
            let what = format!("the configuration does not load: {}", e.message);
            let fix = "correct the key the message names (docs/configuration.md lists every key)";
            report(&[(
                "configuration",
                Err(vec![Finding::problem(what, e.source_name, fix)]),
            )]);
            return Ok(ExitCode::from(1));
        }
    };
    out!("baton doctor: checking {}", config.source_name);
    let results = [
        (
            "configuration",
            Ok(format!("{} parses", config.source_name)),
        ),
        ("data_dir", checks::data_dir(&config)),
        ("workspaces", checks::workspaces(&config)),
        ("store", store::check(&config)),
        ("memos", memos::check(&config)),
        ("file systems", checks::file_systems(&config)),
        ("inotify", checks::inotify(&config)),
        ("open files", checks::open_files()),
        ("listen", checks::listen(&config)),
        ("notifications", checks::notifications(&config)),
        ("outbox marks", handed::marks(&config)),
        ("clock", checks::clock(&config)),
    ];
    Ok(report(&results))
}

/// Prints every check's outcome; exit 1 if any finding is a problem.
fn report(results: &[(&str, Outcome)]) -> ExitCode {
    let mut problems = 0;
    let mut warnings = 0;
    for (name, outcome) in results {
        match outcome {
            Ok(line) => out!("ok       {name}: {line}"),
            Err(findings) => {
                for f in findings {
                    let label = match f.severity {
                        Severity::Problem => {
                            problems += 1;
                            "problem"
                        }
                        Severity::Warning => {
                            warnings += 1;
                            "warning"
                        }
                    };
                    out!("{label:<8} {name}: {}", f.what);
                    out!("           where: {}", f.place);
                    out!("           fix:   {}", f.fix);
                }
            }
        }
    }
    out!("{problems} problem(s), {warnings} warning(s)");
    if problems > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
