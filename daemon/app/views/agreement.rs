//! How a route's shadow policy has fared against the people deciding its handoffs: per day,
//! the decisions, how many the policy would have answered alike (it would approve what a
//! person approved, or leave to people what a person did not approve), and how many it would
//! have approved that a person did not. The evidence a team reads before it lets the policy
//! decide (`policy_mode = "enforce"`). Read from the records in memory; nothing changes.

use crate::app::App;
use crate::auth::Actor;
use crate::contract::Outcome;
use crate::routing::PolicyMode;
use std::collections::BTreeMap;

/// One day's (UTC) decisions on a shadow route, or the total of all days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgreementDay {
    /// `YYYY-MM-DD`; empty for the total.
    pub day: String,
    pub decisions: usize,
    pub agreements: usize,
    /// The policy would have approved; the person did not (what enforcing it would have let
    /// through).
    pub wrongly_approved: usize,
}

impl AgreementDay {
    /// Agreements in percent, rounded down; None with no decision.
    pub fn rate(&self) -> Option<usize> {
        (self.decisions > 0).then(|| self.agreements * 100 / self.decisions)
    }

    fn count(&mut self, would_approve: bool, approved: bool) {
        self.decisions += 1;
        self.agreements += usize::from(would_approve == approved);
        self.wrongly_approved += usize::from(would_approve && !approved);
    }
}

/// A route whose policy runs in shadow mode, and its record.
#[derive(Debug, Clone)]
pub struct RouteAgreement {
    pub route: String,
    /// The policy's text: the `auto_approve_if` expression or the confidence rule.
    pub policy: String,
    /// Newest day first.
    pub days: Vec<AgreementDay>,
    pub total: AgreementDay,
}

impl App {
    /// Every shadow route's agreement with the people, over the workspaces `actor` sees.
    pub fn policy_agreement(&self, actor: &Actor) -> Vec<RouteAgreement> {
        let mut by_route: BTreeMap<String, BTreeMap<String, AgreementDay>> = self
            .config()
            .routes
            .iter()
            .filter(|r| r.policy_mode == PolicyMode::Shadow)
            .map(|r| (r.name.clone(), BTreeMap::new()))
            .collect();
        for ws in self.workspaces() {
            let name = &ws.workspace.name;
            if !actor.can_see(name) {
                continue;
            }
            let st = ws.lock();
            for rec in st.records.values() {
                let Some(d) = &rec.decision else { continue };
                let Some(shadow) = &d.shadow else { continue };
                let Some(route) = self.cx().route_of(rec, name) else {
                    continue;
                };
                let Some(days) = by_route.get_mut(&route.name) else {
                    continue;
                };
                let day = d.at.get(..10).unwrap_or_default().to_string();
                let entry = days.entry(day.clone()).or_insert_with(|| AgreementDay {
                    day,
                    ..AgreementDay::default()
                });
                entry.count(shadow.would_approve, d.outcome == Outcome::Approved);
            }
        }
        let routes = &self.config().routes;
        by_route
            .into_iter()
            .map(|(route, days)| {
                let days: Vec<AgreementDay> = days.into_values().rev().collect();
                let mut total = AgreementDay::default();
                for d in &days {
                    total.decisions += d.decisions;
                    total.agreements += d.agreements;
                    total.wrongly_approved += d.wrongly_approved;
                }
                let r = routes.iter().find(|r| r.name == route);
                let policy = r.map(policy_text).unwrap_or_default();
                RouteAgreement {
                    route,
                    policy,
                    days,
                    total,
                }
            })
            .collect()
    }
}

fn policy_text(route: &crate::routing::Route) -> String {
    match (&route.auto_approve_if, route.auto_approve_min_confidence) {
        (Some(expr), _) => format!("auto_approve_if = {expr}"),
        (None, Some(min)) => format!("auto_approve_min_confidence = {min}"),
        (None, None) => "no policy: nothing to compare".into(),
    }
}
