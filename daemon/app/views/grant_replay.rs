//! `baton policy replay`'s grants: which kept grant (`data_dir/grants.json`, or a file of
//! grants given) would have approved each recorded revision, next to what happened to it. Each
//! grant is taken as it stood when the revision arrived: granted by then, not yet revoked or
//! expired, and its uses so far (the revisions this replay gave it before, in order of
//! arrival) below its count; then its scope, and the candidate configuration's route limits,
//! as the daemon applies them at receipt. Read from the store like the policy replay: it
//! writes nothing and decides nothing.

use super::replay::{revisions, Revision};
use crate::app::review::grants::table::DOCUMENT;
use crate::app::review::grants::{
    grant_maxima, needs_more_than_one, never_granted, scope::Candidate, Grant, MIN_GRANT_S,
};
use crate::config::Config;
use crate::routing::Route;
use crate::store::Store;
use crate::workspace;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The grants replayed, and each revision's line.
#[derive(Debug, Serialize)]
pub struct GrantReplay {
    /// Where the grants were read.
    pub file: String,
    pub grants: Vec<Grant>,
    /// Every revision received at or after `since`, in order of arrival.
    pub handoffs: Vec<GrantLine>,
}

/// One revision: the grant that would have approved it, or why none would, and what happened.
#[derive(Debug, Serialize)]
pub struct GrantLine {
    pub key: String,
    pub workspace: String,
    pub revision: u32,
    /// When it arrived (RFC 3339).
    pub arrived: String,
    pub route: Option<String>,
    /// The agent proven to have sent it; absent: none did.
    pub sender: Option<String>,
    /// The grant that would have approved it (the first covering it, oldest first, as the
    /// daemon takes them).
    pub would_approve: Option<String>,
    /// That grant's use number this would have been.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_number: Option<u32>,
    /// Why each grant of its workspace would not have approved it.
    pub misses: Vec<Miss>,
    /// What happened: the decision's outcome and who made it; absent: not decided.
    pub outcome: Option<String>,
    pub by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Miss {
    pub grant: String,
    pub why: String,
}

/// Reads the grants from `file` (default `data_dir/grants.json`, or the cluster's; missing:
/// none) and replays
/// them over every revision that arrived at or after `since` (RFC 3339).
pub fn replay_grants(
    config: &Config,
    file: Option<&Path>,
    since: &str,
) -> anyhow::Result<GrantReplay> {
    let (grants, from) = match (file, &config.cluster) {
        // A cluster's grants are its database's, not a node's data_dir's.
        (None, Some(cluster)) => {
            let documents = crate::cluster::Cluster::connect(cluster)?.documents();
            let from = documents.place(DOCUMENT);
            let grants = match documents.read(DOCUMENT)? {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                    anyhow::anyhow!("{from}: not a list of grants ({e}); give a file with --grants")
                })?,
                None => Vec::new(),
            };
            (grants, from)
        }
        _ => {
            let file = file.map_or_else(|| config.data_dir.join(DOCUMENT), Path::to_path_buf);
            (grants_in(&file)?, file.display().to_string())
        }
    };
    let mut all: Vec<(String, Revision)> = Vec::new();
    if !grants.is_empty() {
        let found = workspace::discover(&config.workspaces)?;
        let records = crate::cluster::records_of(config)?;
        for ws in &found.workspaces {
            let store = Store::for_workspace(&records, ws);
            for dir in store.record_dirs().unwrap_or_default() {
                for r in revisions(&store, &dir) {
                    if r.arrived.as_str() >= since {
                        all.push((ws.name.clone(), r));
                    }
                }
            }
        }
    }
    all.sort_by(|a, b| a.1.arrived.cmp(&b.1.arrived));
    let mut uses: HashMap<String, u32> = HashMap::new();
    let handoffs = all
        .into_iter()
        .map(|(ws, r)| line(config, &grants, &mut uses, &ws, r))
        .collect();
    Ok(GrantReplay {
        file: from,
        grants,
        handoffs,
    })
}

/// `r`'s line, counting the use it gives its grant in `uses`.
fn line(
    config: &Config,
    grants: &[Grant],
    uses: &mut HashMap<String, u32>,
    ws: &str,
    r: Revision,
) -> GrantLine {
    let routes = &config.routes;
    let route_name = r
        .route
        .clone()
        .or_else(|| crate::routing::route_for(routes, &r.handoff, ws).map(|x| x.name.clone()));
    let route = route_name
        .as_ref()
        .and_then(|n| routes.iter().find(|x| &x.name == n));
    let sender = r.sender(&config.data_dir, ws);
    let arrived = OffsetDateTime::parse(&r.arrived, &Rfc3339).ok();
    let artifacts = match &r.artifacts {
        Some(a) => Some(
            a.iter()
                .map(|f| (f.path.clone(), u64::try_from(f.size).unwrap_or(0)))
                .collect::<Vec<_>>(),
        ),
        None if r.handoff.artifacts.is_empty() => Some(Vec::new()),
        None => None,
    };
    let candidate = artifacts.map(|artifacts| Candidate {
        workspace: ws,
        sender: sender.clone(),
        route: route_name.as_deref(),
        handoff: std::borrow::Cow::Borrowed(&r.handoff),
        artifacts,
    });
    let mut misses = Vec::new();
    let mut would = None;
    for g in grants.iter().filter(|g| g.scope.workspace == ws) {
        let used = uses.get(&g.id).copied().unwrap_or(0);
        let why = match (&candidate, arrived) {
            (None, _) => Some("the store kept no sizes of its artifacts".to_string()),
            (_, None) => Some("no readable time of arrival".to_string()),
            (Some(c), Some(at)) => misses_at(config, g, used, at, c, route),
        };
        match why {
            Some(why) => misses.push(Miss {
                grant: g.id.clone(),
                why,
            }),
            None if would.is_none() => would = Some((g.id.clone(), used + 1)),
            // A later grant that covers it too: the daemon takes the first.
            None => {}
        }
    }
    if let Some((id, n)) = &would {
        uses.insert(id.clone(), *n);
    }
    let decision = r.decision.as_ref();
    GrantLine {
        key: r.key.clone(),
        workspace: ws.to_string(),
        revision: r.revision,
        arrived: r.arrived.clone(),
        route: route_name.clone(),
        sender,
        use_number: would.as_ref().map(|w| w.1),
        would_approve: would.map(|w| w.0),
        misses,
        outcome: decision.map(|d| d.outcome.as_str().to_string()),
        by: decision.map(|d| d.by.clone()),
    }
}

/// Why `g` (`used` times so far) would not have approved `c`, arrived `at`, or `None`.
fn misses_at(
    config: &Config,
    g: &Grant,
    used: u32,
    at: OffsetDateTime,
    c: &Candidate,
    route: Option<&Route>,
) -> Option<String> {
    // The grant's own limits, as they stood then.
    if g.at_time().is_none_or(|granted| at < granted) {
        return Some(format!("arrived before it was granted ({})", g.at));
    }
    if let Some(rev) = &g.revoked {
        let when = OffsetDateTime::parse(&rev.at, &Rfc3339).ok();
        if when.is_none_or(|t| t <= at) {
            return Some(format!("revoked by {} at {}", rev.by, rev.at));
        }
    }
    if g.until_time().is_none_or(|u| at >= u) {
        return Some(format!("expired at {}", g.until));
    }
    if used >= g.max_handoffs {
        return Some(format!("used up ({used} of {})", g.max_handoffs));
    }
    if let Some(why) = g.scope.misses(c) {
        return Some(why.to_string());
    }
    // The route's limits, as the candidate configuration sets them.
    if let Some(trigger) = never_granted(&c.handoff) {
        return Some(format!("its trigger is {trigger}, which no grant approves"));
    }
    let (max_handoffs, max_s) = grant_maxima(route);
    if max_handoffs == 0 || max_s < MIN_GRANT_S {
        return Some("its route allows no grants".into());
    }
    if crate::app::review::step_up::asks_passkey(route) {
        return Some("its route asks each approval for a passkey".into());
    }
    if let Some(why) = needs_more_than_one(route, &c.handoff) {
        return Some(format!("its route {why}"));
    }
    if used >= max_handoffs {
        return Some("as many uses as the route's grant_max_handoffs".into());
    }
    let reach = time::Duration::seconds(i64::try_from(max_s).unwrap_or(i64::MAX));
    if g.at_time()
        .and_then(|t| t.checked_add(reach))
        .is_none_or(|end| end <= at)
    {
        return Some("older than the route's grant_max_s".into());
    }
    let roles: Vec<String> = match config.users.iter().find(|u| u.name == g.granted_by) {
        Some(u) => u.roles.clone(),
        // The built-in admin is no `[[users]]` entry.
        None if g.granted_by == "admin" => vec!["admin".into()],
        None => return Some(format!("its granter {} is no user now", g.granted_by)),
    };
    if !crate::routing::may_decide(route, &g.granted_by, &roles) {
        return Some(format!("its granter {} may not decide there", g.granted_by));
    }
    None
}

/// The grants of a file in the form of `data_dir/grants.json` (missing: none).
fn grants_in(file: &Path) -> anyhow::Result<Vec<Grant>> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a list of grants ({e}); give the grants.json of a data_dir",
                file.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => anyhow::bail!("cannot read {}: {e}", file.display()),
    }
}
