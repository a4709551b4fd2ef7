//! Unauthenticated operations endpoints: health, metrics, the OpenAPI document.

use super::ApiError;
use crate::json::Json;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use baton::app::App;
use serde_json::json;

/// `status`: `failing` (503) when the daemon can no longer do its job, `degraded` (200) when
/// part of it is out (a workspace that cannot be opened, a search index removed from under
/// it), else `ok`.
pub async fn healthz(State(app): State<App>) -> impl IntoResponse {
    let unserved = unserved(&app);
    let search_error = app.search_failing();
    let probing = app.clone();
    let data_dir_error = crate::blocking(move || probing.data_dir_problem())
        .await
        .unwrap_or_else(|_| Some("the probe of data_dir did not finish".into()));
    let damaged = app.store_damage();
    let audit_blocked = app.audit_logs_blocked();
    let memos = app.memo_damage();
    let chat_links = app.chat_links_damage();
    let cadences = app.digest_cadence_damage();
    // Reads of documents (a cluster's rows): off the runtime, as this answer needs no
    // credentials and may be asked often.
    let reading = app.clone();
    let (push_key, passkeys) =
        crate::blocking(move || (reading.push_key_damage(), reading.passkeys_problem()))
            .await
            .unwrap_or((None, None));
    let mattermost_key = app.mattermost_key_damage();
    let degraded = !unserved.is_empty()
        || mattermost_key.is_some()
        || push_key.is_some()
        || passkeys.is_some()
        || !memos.is_empty()
        || cadences.is_some()
        || chat_links.is_some()
        || search_error.is_some()
        || data_dir_error.is_some()
        || !audit_blocked.is_empty()
        || !damaged.is_empty();
    let (status, state) = match app.failing() {
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, "failing"),
        None if degraded => (StatusCode::OK, "degraded"),
        None => (StatusCode::OK, "ok"),
    };
    let workspaces = app.workspaces();
    let mut body = json!({
        "status": state,
        "ready": app.is_ready(),
        "workspaces": workspaces.len(),
    });
    // Absent rather than null, like every other optional field baton writes.
    if let Some(reason) = app.failing() {
        body["reason"] = json!(reason);
    }
    if !unserved.is_empty() {
        body["unserved"] = json!(unserved);
    }
    if let Some(error) = data_dir_error {
        body["data_dir"] = json!({ "error": error });
    }
    if !damaged.is_empty() {
        // Named like an unserved workspace: the operator has to act (`baton repair`).
        body["store_damaged"] = json!(store_damaged(&damaged));
    }
    if !audit_blocked.is_empty() {
        // Every decision in these workspaces is refused until a person clears the place.
        body["audit_log_blocked"] = json!(audit_blocked
            .iter()
            .map(|b| json!({ "workspace": b.workspace, "file": b.file, "error": b.to_string(), "action": b.action }))
            .collect::<Vec<_>>());
    }
    if !memos.is_empty() {
        // A memo the daemon rebuilt or fails safe on: named with what was done and what to do.
        body["memo_damaged"] = json!(memos);
    }
    if let Some(damage) = cadences {
        // Saving a cadence is refused until the operator mends the file or moves it aside.
        body["digest_cadence_damaged"] = json!(damage);
    }
    match push_key {
        // Web Push is off (nothing else is) until the key is mended; never replaced by a new one.
        Some(damage) if damage.damaged => body["push_key_damaged"] = json!(damage),
        // Not damage: the database or the disk failed the read; nothing to mend in the key.
        Some(damage) => body["push_key_unreachable"] = json!(damage),
        None => {}
    }
    if let Some(why) = mattermost_key {
        // Posts with buttons are spooled and fail their attempts (retried) until it is mended.
        body["mattermost_key_damaged"] = json!({ "why": why,
            "action": "Mattermost posts with buttons fail their attempts (listed on Deliveries, retried) and are made once the key is mended: put chat/mattermost-key back from a backup; deleting it makes a new key, and buttons already posted are then refused" });
    }
    match passkeys {
        // Only what reads the passkeys is refused until they are mended.
        Some((true, why)) => {
            body["passkeys_damaged"] = json!({ "why": why,
            "action": "approvals on routes with step_up = \"passkey\", and registering or removing a passkey, are refused until it is mended; everything else works" })
        }
        // Not damage: nothing to mend in the document.
        Some((false, why)) => {
            body["passkeys_unreachable"] = json!({ "why": why,
            "action": "approvals on routes with step_up = \"passkey\", and registering or removing a passkey, are refused while the passkeys cannot be read (the database or the disk answered with an error, see the log); nothing is to be done to the document" })
        }
        None => {}
    }
    if let Some((file, why)) = chat_links {
        // No link is trusted from it and nothing is saved over it until it is mended.
        body["chat_links_damaged"] = json!({ "file": file, "why": why,
            "action": "link changes are refused and no link from it counts; mend it or move it away" });
    }
    if let Some((documents, indexing)) = app.search_state() {
        body["search"] = json!({ "documents": documents, "indexing": indexing });
        // Named like an unserved workspace's `error`: what is wrong and what is done about it.
        if let Some(error) = search_error {
            body["search"]["error"] = json!(error);
        }
    }
    let alerts: usize = app.alerts().values().map(Vec::len).sum();
    if alerts > 0 {
        // Tampering is an alert for people, not a reason to take the daemon out of service.
        // Unauthenticated: the count only; `baton audit verify` and the logs say what and where.
        body["tamper_alerts"] = json!(alerts);
    }
    let conflicts = app.name_conflicts();
    if !conflicts.is_empty() {
        // Not degraded: every workspace name is served, from one of its folders; the other
        // folder's agents are heard by no one until one of the two is renamed. Named with both
        // paths, as an unserved workspace is.
        body["name_conflicts"] = json!(conflicts
            .iter()
            .map(|c| {
                let mut one = json!({
                    "workspace": c.name,
                    "not_served": c.not_served,
                    "action": "workspace names must be unique across the roots: rename one of the two folders (the one renamed is served under its new name); this entry clears once the folder not served is renamed or removed",
                });
                // Absent while the other folder is still being loaded.
                if let Some(served) = &c.served {
                    one["served"] = json!(served);
                }
                one
            })
            .collect::<Vec<_>>());
    }
    let elsewhere = app.waiting_workspaces().len();
    if elsewhere > 0 {
        // Skipped: another daemon holds their owner lock (the log names it). A count only,
        // as for alerts: this answer needs no credentials.
        body["served_elsewhere"] = json!(elsewhere);
    }
    if let Some(cluster) = app.cluster() {
        // This node's part: the whole cluster is `baton cluster status`.
        body["cluster"] = json!({ "node": cluster.node, "leases": cluster.leases.held() });
    }
    let roots: Vec<_> = workspaces
        .iter()
        .map(|w| w.workspace.root.clone())
        .collect();
    let empty = app.config().empty_entries(app.roots(), &roots);
    if !empty.is_empty() {
        body["empty_entries"] = json!(empty);
    }
    (status, Json(body))
}

/// The workspaces that cannot be opened, by name, with the error: the operator has to act
/// (raise `ulimit -n`, fix the store's permissions), so health names them, as it names the
/// configuration's empty entries.
fn unserved(app: &App) -> Vec<serde_json::Value> {
    let unserved = app.unserved_workspaces();
    unserved
        .iter()
        .filter(|u| u.name_taken_by.is_none())
        .map(|u| json!({ "workspace": u.ws.name, "error": u.error }))
        .collect()
}

/// The damaged store files, by workspace: each is served read-only until `baton repair`.
fn store_damaged(damaged: &[(String, Vec<baton::store::Damage>)]) -> Vec<serde_json::Value> {
    let each = damaged.iter().flat_map(|(ws, damage)| {
        damage.iter().map(move |d| {
            json!({ "workspace": ws, "file": d.file, "error": format!("{}; the workspace is read-only until `baton repair`", d.why()) })
        })
    });
    each.collect()
}

/// OpenMetrics, or the 0.0.4 text format for a scraper whose `Accept` asks for it.
pub async fn metrics(State(app): State<App>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let openmetrics = app.metrics().encode();
    match super::exposition::wants_text_004(accept) {
        true => (
            [(header::CONTENT_TYPE, super::exposition::TEXT_004)],
            super::exposition::to_text_004(&openmetrics),
        ),
        false => (
            [(header::CONTENT_TYPE, super::exposition::OPENMETRICS)],
            openmetrics,
        ),
    }
}

pub async fn openapi() -> impl IntoResponse {
    Json(super::openapi::document())
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such page or API endpoint; see /api/v1/openapi.json".into())
}
