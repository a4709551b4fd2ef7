//! `baton policy replay FILE [--since AGE]`: what a candidate configuration's policies would
//! have done with every revision people decided (a revision sent back and then revised
//! counts as well as the last one), and which grant would have approved each revision received
//! (`grants`). Exits 1 when the candidate's policy failed on any of them (an error decides
//! nothing: those revisions would have gone to people, and are listed). Canaries count only
//! with `--include-canaries` (the grants' replay reads the workspaces only).

use super::export::parse_since;
use baton::app::grant_replay::GrantReplay;
use baton::app::replay::RouteReplay;
use baton::config::Config;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

pub fn replay(
    file: &Path,
    since: Option<&str>,
    grants: Option<&Path>,
    json: bool,
    canaries: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(Some(file))?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    let since = since.map(parse_since).transpose()?;
    let since = since.map_or(String::new(), |t| {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.format(&format).unwrap_or_default()
    });
    let replayed = baton::app::replay::replay(&config, &since, canaries)?;
    let granted = baton::app::grant_replay::replay_grants(&config, grants, &since)?;
    // A policy its route lets approve unproven work: said where the team reads the tables.
    let unproven: Vec<&str> = config
        .routes
        .iter()
        .filter(|r| baton::config::approves_unproven(r))
        .map(|r| r.name.as_str())
        .collect();
    if json {
        let mut all = as_json(&replayed, &granted);
        all["approves_unproven"] = serde_json::json!(unproven);
        out!("{all}");
    } else {
        print_policies(file, &replayed);
        for route in &unproven {
            out!(
                "warning: route {route} has auto_approve_unproven = true: its policy can approve a \
                 revision no agent is proven to have sent (sender \"\"), whatever any writer of \
                 the workspace folder wrote under any from_agent"
            );
        }
        print_grants(&granted);
    }
    let errors: usize = replayed.values().map(|r| r.errors.len()).sum();
    if errors > 0 {
        eprintln!(
            "baton policy replay: the candidate's policy failed on {errors} decided revision(s) \
             (listed as `error:`); fix it before it decides"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The policies' tables, per route.
fn print_policies(file: &Path, replayed: &BTreeMap<String, RouteReplay>) {
    out!("{}", baton::policy::LEGEND);
    out!("each row counts decided revisions: every decision people made, those a later revision replaced included");
    if replayed.is_empty() {
        out!(
            "no human decision on a route with a policy in {}",
            file.display()
        );
    }
    for (route, r) in replayed {
        out!("route {route}:");
        out!(
            "  {:<22} {:>9} {:>9} {:>18} {:>6}",
            "",
            "approved",
            "rejected",
            "changes_requested",
            "other"
        );
        for would in [true, false] {
            let n = |answer: &str| {
                r.counts
                    .get(&(would, answer.to_string()))
                    .copied()
                    .unwrap_or(0)
            };
            let other: usize = r
                .counts
                .iter()
                .filter(|((w, a), _)| {
                    *w == would
                        && !["approved", "rejected", "changes_requested"].contains(&a.as_str())
                })
                .map(|(_, n)| n)
                .sum();
            let label = if would {
                "would auto-approve"
            } else {
                "would leave to people"
            };
            out!(
                "  {label:<22} {:>9} {:>9} {:>18} {other:>6}",
                n("approved"),
                n("rejected"),
                n("changes_requested")
            );
        }
        for line in &r.disagreements {
            out!("  disagrees: {line}");
        }
        for line in &r.unknown {
            out!("  not replayed: {line}");
        }
        for line in &r.errors {
            out!("  error: {line} (decides nothing: left to people)");
        }
    }
}

/// The grants replayed: each grant, then each revision received with the grant that would
/// have approved it (or why none would) beside what happened to it.
fn print_grants(g: &GrantReplay) {
    if g.grants.is_empty() {
        out!("grants: none in {} (nothing to replay)", g.file);
        return;
    }
    out!(
        "grants from {}: each as it stood when a revision arrived (time window, revocation, \
         uses so far), its scope and the candidate's route limits",
        g.file
    );
    for grant in &g.grants {
        let s = &grant.scope;
        let revoked = grant.revoked.as_ref().map_or(String::new(), |r| {
            format!("; revoked by {} at {}", r.by, r.at)
        });
        out!(
            "  grant {}: by {} at {} (with {}); workspace {}, sender {}, route {}, labels [{}], \
             paths {}; at most {} handoff(s) until {}{revoked}",
            grant.id,
            grant.granted_by,
            grant.at,
            grant.from_handoff,
            s.workspace,
            s.sender,
            s.route.as_deref().unwrap_or("-"),
            s.labels.join(", "),
            s.paths.as_deref().unwrap_or("-"),
            grant.max_handoffs,
            grant.until
        );
    }
    out!(
        "  {:<28} {:>4} {:<24} {:<22} {:<28} why not",
        "handoff (workspace)",
        "rev",
        "arrived",
        "would be approved by",
        "what happened"
    );
    for h in &g.handoffs {
        let would = match (&h.would_approve, h.use_number) {
            (Some(id), Some(n)) => format!("{id} (use {n})"),
            (Some(id), None) => id.clone(),
            (None, _) => "-".to_string(),
        };
        let happened = match (&h.outcome, &h.by) {
            (Some(o), Some(by)) => format!("{o} by {by}"),
            _ => "not decided".to_string(),
        };
        let why: Vec<String> = match h.would_approve {
            Some(_) => Vec::new(),
            None => h
                .misses
                .iter()
                .map(|m| format!("{}: {}", m.grant, m.why))
                .collect(),
        };
        out!(
            "  {:<28} {:>4} {:<24} {:<22} {:<28} {}",
            format!("{} ({})", h.key, h.workspace),
            h.revision,
            h.arrived,
            would,
            happened,
            why.join("; ")
        );
    }
}

/// `--json`: the policies per route and the grants, as one object.
fn as_json(replayed: &BTreeMap<String, RouteReplay>, granted: &GrantReplay) -> serde_json::Value {
    let policies: Vec<serde_json::Value> = replayed
        .iter()
        .map(|(route, r)| {
            let counts: Vec<serde_json::Value> = r
                .counts
                .iter()
                .map(|((would, answer), n)| {
                    serde_json::json!({
                        "would_auto_approve": would, "answered": answer, "revisions": n,
                    })
                })
                .collect();
            serde_json::json!({
                "route": route, "counts": counts, "disagreements": r.disagreements,
                "errors": r.errors, "not_replayed": r.unknown,
            })
        })
        .collect();
    serde_json::json!({
        "legend": baton::policy::LEGEND,
        "policies": policies,
        "grants": granted,
    })
}
