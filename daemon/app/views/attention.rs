//! How each reviewer decides, per route, read from the attention signals their decisions
//! carry (`decision.attention`): how often they approve, how long they take from first view
//! to decision, and how many of their approvals left an artifact the revision changed
//! unopened. The figures the reviewers page shows; read from the records in memory, so they
//! cover the decided handoffs the daemon keeps, and only decisions made since it records
//! signals. A quorum's earlier approvals are in their events, not here: a handoff counts once,
//! for the person whose approval or decision closed it.

use crate::app::App;
use crate::auth::Actor;
use crate::contract::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;

/// One reviewer's decisions on one route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attentiveness {
    pub reviewer: String,
    /// `none` for handoffs no route matched.
    pub route: String,
    pub decisions: usize,
    pub approvals: usize,
    /// The median seconds from first view to decision, over the decisions with a first view.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_s: Option<u64>,
    /// Decisions made without ever opening the handoff (a chat button, a mail link, bulk).
    pub unviewed: usize,
    /// Approvals of revisions that changed an artifact, and of those, the ones given with a
    /// changed artifact unopened.
    pub approvals_of_changes: usize,
    pub approvals_unopened: usize,
}

impl Attentiveness {
    /// Approvals in percent of decisions, rounded down.
    pub fn approval_rate(&self) -> Option<usize> {
        (self.decisions > 0).then(|| self.approvals * 100 / self.decisions)
    }

    /// Approvals with a changed artifact unopened, in percent of approvals of changes.
    pub fn unopened_share(&self) -> Option<usize> {
        (self.approvals_of_changes > 0)
            .then(|| self.approvals_unopened * 100 / self.approvals_of_changes)
    }
}

impl App {
    /// Per reviewer and route, how they decided: everyone's for an admin, one's own otherwise
    /// (nothing for an agent).
    pub fn attentiveness(&self, actor: &Actor) -> Vec<Attentiveness> {
        let Actor::Reviewer { name, roles } = actor else {
            return Vec::new();
        };
        let admin = roles.iter().any(|r| r == "admin");
        let mut seconds: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
        let mut rows: BTreeMap<(String, String), Attentiveness> = BTreeMap::new();
        for ws in self.workspaces() {
            let st = ws.lock();
            for rec in st.records.values() {
                let Some(d) = &rec.decision else { continue };
                let Some(a) = &d.attention else { continue };
                if !admin && *d.by != **name {
                    continue;
                }
                let route = rec.meta.route.as_ref().and_then(|r| r.route.clone());
                let at = (d.by.to_string(), route.unwrap_or_else(|| "none".into()));
                let row = rows.entry(at.clone()).or_insert_with(|| Attentiveness {
                    reviewer: at.0.clone(),
                    route: at.1.clone(),
                    ..Attentiveness::default()
                });
                row.decisions += 1;
                match a.seconds {
                    Some(s) => seconds.entry(at).or_default().push(s),
                    None => row.unviewed += 1,
                }
                if d.outcome == Outcome::Approved {
                    row.approvals += 1;
                    if !a.changed.is_empty() {
                        row.approvals_of_changes += 1;
                        row.approvals_unopened += usize::from(!a.unopened.is_empty());
                    }
                }
            }
        }
        for (at, mut s) in seconds {
            if let Some(row) = rows.get_mut(&at) {
                row.median_s = median(&mut s);
            }
        }
        rows.into_values().collect()
    }
}

/// The median (the lower middle of an even count).
fn median(values: &mut [u64]) -> Option<u64> {
    values.sort_unstable();
    let n = values.len();
    (n > 0).then(|| values[(n - 1) / 2])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_median_is_the_middle_value_or_the_lower_of_two() {
        assert_eq!(super::median(&mut []), None);
        assert_eq!(super::median(&mut [9, 1, 5]), Some(5));
        assert_eq!(super::median(&mut [4, 1, 9, 7]), Some(4));
    }
}
