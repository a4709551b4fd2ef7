//! The reviewers page's "How reviews are decided" section: per reviewer and route, the
//! approval rate, the median time from first view to decision and the share of approvals
//! given with a changed artifact unopened (`App::attentiveness`, read from the decisions'
//! attention signals). Everyone's for an admin, one's own otherwise. `templates/attention.html`
//! lays it out.

use baton::app::{App, Attentiveness};
use baton::auth::Actor;

/// The section's rows, as the template shows them.
pub struct Section {
    pub rows: Vec<Row>,
}

pub struct Row {
    pub reviewer: String,
    pub route: String,
    pub decisions: usize,
    /// Each figure as shown: a number with its unit, or a dash when there is nothing to count.
    pub approval_rate: String,
    pub median: String,
    pub unopened: String,
    /// Decisions made without opening the handoff (chat buttons, mail links, bulk).
    pub unviewed: usize,
}

impl Section {
    /// The figures `actor` may see, read off the async workers (it reads every record).
    pub async fn load(app: &App, actor: &Actor) -> Section {
        let (app, actor) = (app.clone(), actor.clone());
        let rows = crate::blocking(move || app.attentiveness(&actor))
            .await
            .unwrap_or_default();
        Section {
            rows: rows.into_iter().map(row).collect(),
        }
    }
}

fn row(a: Attentiveness) -> Row {
    let percent = |p: Option<usize>| p.map_or("\u{2013}".to_string(), |p| format!("{p}%"));
    Row {
        approval_rate: percent(a.approval_rate()),
        unopened: match a.unopened_share() {
            Some(p) => format!(
                "{p}% ({} of {})",
                a.approvals_unopened, a.approvals_of_changes
            ),
            None => "\u{2013}".to_string(),
        },
        median: a.median_s.map_or("\u{2013}".to_string(), duration),
        reviewer: a.reviewer,
        route: a.route,
        decisions: a.decisions,
        unviewed: a.unviewed,
    }
}

/// Seconds as a reader says them: `45 s`, `3 min 5 s`, `2 h 10 min`.
fn duration(s: u64) -> String {
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_in_the_largest_units() {
        assert_eq!(super::duration(45), "45 s");
        assert_eq!(super::duration(185), "3 min 5 s");
        assert_eq!(super::duration(7800), "2 h 10 min");
    }
}
