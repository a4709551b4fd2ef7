//! The canaries section of `/reviewers`: each reviewer's record with canaries (known-bad
//! example handoffs the daemon files into queues): caught, missed and the catch rate. An
//! admin sees everyone's, anyone else their own. Read from `App::canary_catches`, the same
//! tally the `baton_canaries_caught`/`_missed` metrics count.

use baton::app::App;
use baton::auth::Actor;

/// One reviewer's line.
pub struct CanaryLine {
    pub reviewer: String,
    pub caught: u64,
    pub missed: u64,
    /// The share caught, in percent, rounded.
    pub rate: String,
}

/// The lines `actor` may see (none for an agent; an empty list hides the section).
pub fn lines(app: &App, actor: &Actor) -> Vec<CanaryLine> {
    let Actor::Reviewer { name, roles } = actor else {
        return Vec::new();
    };
    let admin = roles.iter().any(|r| r == "admin");
    app.canary_catches()
        .into_iter()
        .filter(|(reviewer, _)| admin || reviewer == name)
        .map(|(reviewer, c)| CanaryLine {
            reviewer,
            caught: c.caught,
            missed: c.missed,
            rate: c
                .rate()
                .map_or("–".into(), |r| format!("{:.0}%", r * 100.0)),
        })
        .collect()
}
