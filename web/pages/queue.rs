//! The queue (`/`): handoffs one line each, the ones this reviewer may decide first, then by
//! urgency; filters and paging in the URL; a bulk form that decides the checked lines (each
//! its own decision and audit event, through the same `Cx::decide` as the API).

use super::forms::{csrf_refused, Form};
use super::view::{self, Deadline, Meter};
use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{
    App, BulkItem, DecisionRequest, QueueQuery, QueueView, SinceSeen, StateFilter, Summary,
};
use baton::contract::decision::Via;
use baton::contract::handoff::Trigger;
use baton::contract::Outcome;
use serde::Deserialize;
use std::borrow::Borrow;
use time::OffsetDateTime;

/// Lines per page a reviewer may pick.
const PAGE_SIZES: [usize; 3] = [25, 50, 100];
/// Most workspaces offered as a list in the filter.
const WORKSPACE_CHOICES: usize = 50;
/// Most handoffs decided by one bulk post.
const BULK_MAX: usize = baton::app::MAX_BULK;
/// Most refused lines named one by one in the queue's message after a bulk post.
const REFUSALS_NAMED: usize = 10;
/// The queue's page, as its messages are kept for the next view (`flash`).
const QUEUE_PAGE: &str = "/";

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub struct Filters {
    view: Option<String>,
    trigger: Option<String>,
    workspace: Option<String>,
    per: Option<usize>,
    page: Option<usize>,
    decided: Option<usize>,
    failed: Option<usize>,
}

pub struct Row {
    pub key: String,
    /// The revision and its sha256 the line shows: what the bulk form binds a decision to.
    pub revision: u32,
    pub handoff_sha256: String,
    pub title: String,
    pub workspace: String,
    pub from_agent: String,
    pub trigger: (&'static str, &'static str),
    pub meter: Option<Meter>,
    pub age: String,
    pub received_at: String,
    pub deadline: Option<Deadline>,
    pub claimed_by: Option<String>,
    pub may_decide: bool,
    pub pending: bool,
    pub outcome: Option<&'static str>,
    /// Who decided it, and how long ago.
    pub decided_by: Option<String>,
    pub decided_age: Option<String>,
    /// Approvals so far of those needed ("1 of 2"), for a pending handoff that needs more
    /// than one or has some.
    pub gate: Option<String>,
    /// What changed since this reviewer last opened it (`new`, `revised`, `approved`) and
    /// how the mark says it.
    pub since_seen: Option<(&'static str, String)>,
}

/// A handoff.json refused as invalid, as the queue lists it.
pub struct InvalidRow {
    pub key: String,
    pub workspace: String,
    pub age: String,
    pub at: String,
    pub problems: usize,
    pub first: String,
}

pub struct Tab {
    pub view: &'static str,
    pub label: &'static str,
    pub count: usize,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    chrome: Chrome,
    tabs: Vec<Tab>,
    rows: Vec<Row>,
    invalid: Vec<InvalidRow>,
    view: &'static str,
    trigger: String,
    workspace: String,
    workspaces: Vec<String>,
    per: usize,
    sizes: [usize; 3],
    page: usize,
    pages: usize,
    total: usize,
    notice: Option<String>,
    /// What the last bulk post could not decide, and why (shown once).
    refused: Option<String>,
}

impl QueuePage {
    /// The URL of this view with another page or page size, filters kept.
    fn href(&self, page: impl Borrow<usize>, per: impl Borrow<usize>) -> String {
        let (page, per) = (*page.borrow(), *per.borrow());
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("view", self.view);
        if !self.trigger.is_empty() {
            q.append_pair("trigger", &self.trigger);
        }
        if !self.workspace.is_empty() {
            q.append_pair("workspace", &self.workspace);
        }
        q.append_pair("per", &per.to_string());
        q.append_pair("page", &page.to_string());
        format!("/?{}", q.finish())
    }
}

/// The queue's mark for what changed since the reviewer last looked.
fn mark(since: Option<SinceSeen>, s: &Summary) -> Option<(&'static str, String)> {
    Some(match since? {
        SinceSeen::New => ("new", "new to you".to_string()),
        SinceSeen::Revised { seen } => (
            "revised",
            format!(
                "revised since you looked (revision {seen} → {})",
                s.revision
            ),
        ),
        SinceSeen::Approved { seen } => (
            "approved",
            format!(
                "approved by others since you looked ({seen} → {})",
                s.approvals
            ),
        ),
    })
}

fn row(s: &Summary, since: Option<SinceSeen>, now: OffsetDateTime) -> Row {
    let pending = s.state == "pending";
    let deadline = s
        .deadline
        .as_deref()
        .filter(|_| pending)
        .and_then(|d| Deadline::new(d, now));
    Row {
        title: view::clip(s.title.as_deref().unwrap_or(&s.task_id), 200),
        trigger: view::trigger(s.trigger),
        meter: Meter::new(s.confidence),
        age: view::age(&s.received_at, now),
        deadline,
        may_decide: pending && s.standing.may_decide,
        claimed_by: s.standing.claimed_by.clone(),
        outcome: s.outcome.map(Outcome::as_str),
        decided_by: s.decided_by.clone(),
        decided_age: s.decided_at.as_deref().map(|at| view::age(at, now)),
        gate: (pending && (s.approvals_needed > 1 || s.approvals > 0))
            .then(|| format!("{} of {}", s.approvals, s.approvals_needed)),
        since_seen: mark(since, s),
        pending,
        key: s.key.clone(),
        revision: s.revision,
        handoff_sha256: s.handoff_sha256.clone(),
        workspace: s.workspace.clone(),
        from_agent: s.from_agent.clone(),
        received_at: s.received_at.clone(),
    }
}

const VIEWS: [(&str, &str); 6] = [
    ("pending", "Pending"),
    ("mine", "You may decide"),
    ("claimed", "Claimed"),
    ("decided", "Decided"),
    ("all", "All"),
    ("invalid", "Invalid"),
];

/// The core's tab for a view of the page (`None`: the Invalid tab, which lists no handoff).
fn queue_view(view: &str) -> Option<QueueView> {
    Some(match view {
        "pending" => QueueView::Pending,
        "mine" => QueueView::Mine,
        "claimed" => QueueView::Claimed,
        "decided" => QueueView::Decided,
        "all" => QueueView::All,
        _ => return None,
    })
}

fn trigger_named(name: &str) -> Option<Trigger> {
    [
        Trigger::Error,
        Trigger::CriticalAction,
        Trigger::LowConfidence,
        Trigger::Completion,
    ]
    .into_iter()
    .find(|t| t.as_str() == name)
}

pub async fn page(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: axum::http::HeaderMap,
    Query(f): Query<Filters>,
) -> Response {
    let view = VIEWS
        .iter()
        .map(|(v, _)| *v)
        .find(|v| Some(*v) == f.view.as_deref())
        .unwrap_or("pending");
    let trigger = f.trigger.clone().unwrap_or_default();
    let workspace = f.workspace.clone().unwrap_or_default();
    let per = f
        .per
        .filter(|p| PAGE_SIZES.contains(p))
        .unwrap_or(PAGE_SIZES[0]);
    let query = QueueQuery {
        view: queue_view(view).unwrap_or(QueueView::Pending),
        trigger: trigger_named(&trigger),
        workspace: (!workspace.is_empty()).then(|| workspace.clone()),
        page: f.page.unwrap_or(1),
        per,
    };
    // A trigger the page does not offer matches no handoff.
    let none_match = !trigger.is_empty() && query.trigger.is_none();
    let (actor, me) = (s.actor.clone(), s.name.clone());
    let listing = app.clone();
    let cluster = crate::peers::merge::covers_others(&app, &headers);
    let listed = crate::blocking(move || {
        let invalid = listing.invalid_handoffs(&actor);
        // In a cluster the other nodes' lines are merged in below, whole.
        let queue = match cluster {
            true => Err(listing.list(StateFilter::All, &actor)),
            false => Ok(listing.queue_page(&actor, &query, WORKSPACE_CHOICES)),
        };
        (queue, invalid, query)
    })
    .await;
    let Ok((queue, invalid, query)) = listed else {
        return super::internal_error();
    };
    let (mut queue, missing) = match queue {
        Ok(queue) => (queue, None),
        Err(mine) => {
            let (all, missing) = with_other_nodes(&app, &headers, mine).await;
            let queue = baton::app::queue_page_of(&all, &me, &query, WORKSPACE_CHOICES);
            (queue, missing)
        }
    };
    if none_match {
        queue.lines.clear();
        queue.counts = Default::default();
    }
    let now = baton::clock::now_utc();
    // A choice of a few workspaces is a list; past that, a box to type the name in (a list
    // of thousands helps nobody, and would make every queue page heavy).
    let workspaces = queue.workspaces.take().unwrap_or_default();
    let invalid: Vec<InvalidRow> = invalid
        .into_iter()
        .filter(|x| workspace.is_empty() || x.workspace == workspace)
        .map(|x| InvalidRow {
            age: view::age(&x.decision.at, now),
            problems: x.decision.errors.len(),
            first: x
                .decision
                .errors
                .first()
                .map(|p| format!("{} {}", p.pointer, view::clip(&p.message, 160)))
                .unwrap_or_default(),
            at: x.decision.at,
            key: x.decision.handoff_key,
            workspace: x.workspace,
        })
        .collect();
    let tabs = VIEWS
        .iter()
        .map(|(v, label)| Tab {
            view: v,
            label,
            count: match queue_view(v) {
                Some(v) => queue.counts.of(v),
                None => invalid.len(),
            },
            current: *v == view,
        })
        .collect();
    // The Invalid tab lists no handoff line (its table is the invalid ones).
    let (total, page, shown) = match queue_view(view) {
        Some(v) => (queue.counts.of(v), queue.page, queue.lines),
        None => (0, 1, Vec::new()),
    };
    let pages = total.div_ceil(per).max(1);
    let shown_refs: Vec<&Summary> = shown.iter().collect();
    let since = app.since_seen(&s.name, &shown_refs);
    let rows = shown
        .iter()
        .zip(since)
        .map(|(x, since)| row(x, since, now))
        .collect();
    let refused = super::flash::take(&s, QUEUE_PAGE).and_then(|f| f.error);
    let notice = f.decided.map(|n| match f.failed.unwrap_or(0) {
        0 => format!("{n} handoff(s) decided."),
        k => format!("{n} handoff(s) decided; {k} could not be (already decided, not yours to decide, or changed): open them to see why."),
    });
    let notice = match (notice, missing) {
        (notice, None) => notice,
        (Some(notice), Some(missing)) => Some(format!("{notice} {missing}")),
        (None, missing) => missing,
    };
    render(&QueuePage {
        chrome: Chrome::new(&s, "queue"),
        tabs,
        rows,
        invalid,
        view,
        trigger,
        workspace,
        workspaces,
        per,
        sizes: PAGE_SIZES,
        page,
        pages,
        total,
        notice,
        refused,
    })
}

/// In a cluster, the lines of every other live node too, and what to say of the nodes that
/// did not answer.
async fn with_other_nodes(
    app: &App,
    headers: &axum::http::HeaderMap,
    mine: Vec<Summary>,
) -> (Vec<Summary>, Option<String>) {
    use crate::peers::merge;
    let others = merge::ask_others(app, headers, "/api/v1/handoffs?state=all").await;
    let missing = (!others.missing.is_empty()).then(|| {
        format!(
            "Not shown: the handoffs served by {}: no answer.",
            others.missing.join(", ")
        )
    });
    (merge::lists(mine, others, None), missing)
}

/// `POST /decisions`: decides every checked handoff with one outcome and comment.
pub async fn bulk(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let outcome = match form.get("outcome") {
        Some("approved") => Outcome::Approved,
        Some("rejected") => Outcome::Rejected,
        Some("changes_requested") => Outcome::ChangesRequested,
        _ => return Redirect::to("/").into_response(),
    };
    let items = checked_items(&form);
    let comment = form.text("comment");
    let actor = s.actor.clone();
    let results: Result<Vec<(String, Option<String>)>, String> =
        if crate::peers::merge::covers_others(&app, &headers) {
            // In a cluster each line is decided by the node that serves it.
            let template = serde_json::json!({"outcome": form.get("outcome"), "comment": comment});
            crate::peers::bulk::on_the_page(&app, &headers, &s.csrf, &template, items, actor)
                .await
                .map(|results| {
                    results
                        .iter()
                        .map(|r| {
                            let key = r["key"].as_str().unwrap_or_default().to_string();
                            let ok = r["status"].as_u64().is_some_and(|s| s < 300);
                            let why = r["error"].as_str().unwrap_or("refused").to_string();
                            (key, (!ok).then_some(why))
                        })
                        .collect()
                })
        } else {
            let request = DecisionRequest {
                outcome,
                comment,
                revision: None,
                handoff_sha256: None,
                to_agent: None,
                edits: Default::default(),
            };
            // The API's own bulk path: each key its own decision and event, each bound to
            // the revision this page rendered.
            crate::blocking(move || {
                app.cx()
                    .decide_many_via(&items, request, &actor, Via::Page)
                    .map(|results| {
                        results
                            .into_iter()
                            .map(|(key, r)| (key, r.err().map(|e| e.to_string())))
                            .collect()
                    })
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err("the decisions could not be made; try again".into()))
        };
    let (decided, failed) = match &results {
        Ok(results) => {
            let failed = results.iter().filter(|(_, why)| why.is_some()).count();
            (results.len() - failed, failed)
        }
        Err(_) => (0, form.all("key").len().min(BULK_MAX)),
    };
    if let Some(said) = refusals(&results) {
        super::flash::put(
            &s,
            QUEUE_PAGE,
            super::flash::Flash {
                error: Some(said),
                ..Default::default()
            },
        );
    }
    let back = form
        .get("back")
        // A control character would make the Location header unusable (a 500 after deciding).
        .filter(|b| (b.starts_with("/?") || *b == "/") && !b.chars().any(char::is_control))
        .unwrap_or("/");
    let sep = if back.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{back}{sep}decided={decided}&failed={failed}")).into_response()
}

/// The checked lines of the bulk form, each with the revision and sha256 the page rendered
/// for it (its `seen` field: `REVISION SHA256 KEY`). A line without one is sent unbound, and
/// an approval of it is refused.
fn checked_items(form: &Form) -> Vec<BulkItem> {
    let seen: std::collections::HashMap<&str, (u32, &str)> = form
        .all("seen")
        .into_iter()
        .filter_map(|v| {
            let mut parts = v.splitn(3, ' ');
            let revision = parts.next()?.parse().ok()?;
            let digest = parts.next()?;
            Some((parts.next()?, (revision, digest)))
        })
        .collect();
    form.all("key")
        .into_iter()
        .take(BULK_MAX)
        .map(|key| match seen.get(key) {
            Some((revision, digest)) => BulkItem {
                key: key.to_string(),
                revision: Some(*revision),
                handoff_sha256: Some(digest.to_string()),
            },
            None => BulkItem::unbound(key),
        })
        .collect()
}

/// What the queue says of a bulk post that did not decide every checked line: which, and why
/// (a line revised since the page showed it is refused, not decided).
fn refusals(results: &Result<Vec<(String, Option<String>)>, String>) -> Option<String> {
    let results = match results {
        Ok(results) => results,
        Err(whole) => {
            tracing::info!(error = %whole, "bulk decision refused");
            return Some(format!("Nothing was decided: {whole}"));
        }
    };
    let refused: Vec<(&String, &String)> = results
        .iter()
        .filter_map(|(key, why)| Some((key, why.as_ref()?)))
        .collect();
    if refused.is_empty() {
        return None;
    }
    for (key, why) in &refused {
        tracing::info!(key = %key, error = %why, "bulk decision refused");
    }
    let mut said: Vec<String> = refused
        .iter()
        .take(REFUSALS_NAMED)
        .map(|(key, why)| format!("\u{201c}{key}\u{201d}: {why}"))
        .collect();
    if refused.len() > REFUSALS_NAMED {
        said.push(format!("and {} more", refused.len() - REFUSALS_NAMED));
    }
    Some(format!(
        "Not decided ({}): {}. Open them (or reload the queue) to see them as they are now.",
        refused.len(),
        said.join("; ")
    ))
}
