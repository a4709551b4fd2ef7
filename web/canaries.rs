//! What a decision's answer says of a canary (a known-bad example handoff the daemon filed,
//! `baton::app::review::canary`): once decided, the reviewer is told it was one and what was
//! wrong with it, at once: in the API's answer (`canary`) and on the page (a notice).
//! Before the decision nothing tells a canary apart.

use baton::app::App;
use baton::contract::Outcome;
use serde::Serialize;

/// A decided canary, as its decider is told.
#[derive(Debug, Serialize)]
pub struct Told {
    /// Rejected or sent back: caught. Approved: missed.
    pub caught: bool,
    /// What was wrong with it (the example's `why`).
    pub why: String,
}

/// What the decider of `key` is told, if it was a canary and is decided (an approval that
/// only counted toward a quorum tells nothing yet).
pub async fn told(app: &App, key: &str) -> Option<Told> {
    let (app, key) = (app.clone(), key.to_string());
    let found = crate::blocking(move || app.canary_decided(&key))
        .await
        .ok()??;
    let (mark, outcome) = found;
    let caught = match outcome {
        Outcome::Approved => false,
        Outcome::Rejected | Outcome::ChangesRequested => true,
        _ => return None,
    };
    Some(Told {
        caught,
        why: mark.why,
    })
}

impl Told {
    /// The page's words.
    pub fn sentence(&self) -> String {
        match self.caught {
            false => format!(
                "This handoff was a canary, a known-bad example filed to check reviews, and it was approved. What was wrong: {}",
                self.why
            ),
            true => format!(
                "This handoff was a canary, a known-bad example filed to check reviews, and you caught it. What was wrong: {}",
                self.why
            ),
        }
    }
}
