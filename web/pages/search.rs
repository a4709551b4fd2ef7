//! `/search?q=`: the search box's page over `App::search` (as the API), each hit linking to
//! its handoff, the artifact's preview, or its workspace.

use super::{render, Chrome};
use crate::auth::Viewer;
use crate::SearchQuery;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use baton::app::{App, SearchFailed};
use baton::search::Hits;

const PAGE: usize = 20;

pub struct Line {
    pub hit: baton::index::Hit,
    pub href: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    q: String,
    workspace: String,
    kind: String,
    hits: Hits,
    lines: Vec<Line>,
    error: Option<String>,
    /// The index is being built: hits may be missing.
    indexing: bool,
    offset: usize,
    prev: Option<String>,
    next: Option<String>,
    /// (label, count, href) per workspace and kind.
    by_workspace: Vec<(String, u64, String)>,
    by_kind: Vec<(String, u64, String)>,
}

pub async fn page(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: axum::http::HeaderMap,
    query: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // A search box never errors: a paging parameter that is not a number is ignored.
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let (q, workspace, kind) = (
        query.q.clone(),
        query.workspace.clone().unwrap_or_default(),
        query.kind.clone().unwrap_or_default(),
    );
    let offset = query.offset.unwrap_or(0);
    let mut request = query.request();
    request.limit = PAGE;
    let actor = s.actor.clone();
    let indexing = app.search_state().is_some_and(|(_, building)| building);
    let answer = crate::search::everywhere(&app, &headers, request, actor).await;
    let (hits, error) = match answer {
        Ok(Ok(hits)) => (hits, None),
        Ok(Err(e @ SearchFailed::Query(baton::search::SearchError::TooManyTerms(_)))) => {
            (Hits::default(), Some(e.to_string()))
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "search failed");
            (
                Hits::default(),
                Some("search is not available right now; the daemon's log says why".into()),
            )
        }
        Err(_) => (Hits::default(), Some("search failed".into())),
    };
    let link = |ws: &str, kind: &str, offset: usize| {
        let mut url = form_urlencoded::Serializer::new(String::new());
        url.append_pair("q", &q);
        if !ws.is_empty() {
            url.append_pair("workspace", ws);
        }
        if !kind.is_empty() {
            url.append_pair("kind", kind);
        }
        if offset > 0 {
            url.append_pair("offset", &offset.to_string());
        }
        format!("/search?{}", url.finish())
    };
    let by_workspace = hits
        .facets
        .workspace
        .iter()
        .map(|(w, n)| (w.clone(), *n, link(w, &kind, 0)))
        .collect();
    let by_kind = hits
        .facets
        .kind
        .iter()
        .map(|(k, n)| (k.clone(), *n, link(&workspace, k, 0)))
        .collect();
    let prev = (offset > 0).then(|| link(&workspace, &kind, offset.saturating_sub(PAGE)));
    let next = (offset + PAGE < hits.total).then(|| link(&workspace, &kind, offset + PAGE));
    let lines = hits
        .hits
        .iter()
        .cloned()
        .map(|hit| Line {
            href: href(&hit),
            hit,
        })
        .collect();
    render(&SearchPage {
        chrome: Chrome::new(&s, "search"),
        q,
        workspace,
        kind,
        hits,
        lines,
        error,
        indexing,
        offset,
        prev,
        next,
        by_workspace,
        by_kind,
    })
}

/// Where a hit leads: its handoff, the artifact's preview within the handoff naming it, or
/// its workspace.
fn href(hit: &baton::index::Hit) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    use baton::index::Kind;
    match (&hit.kind, &hit.key) {
        (Kind::Handoff | Kind::Decision, Some(key)) => format!("/handoffs/{}", enc(key)),
        (Kind::Artifact, Some(key)) => {
            let path: Vec<String> = hit.path.split('/').map(enc).collect();
            format!("/handoffs/{}/preview/{}", enc(key), path.join("/"))
        }
        _ => format!("/w/{}", enc(&hit.workspace)),
    }
}
