//! The review API beyond SPEC section 9: claiming a handoff and deciding many at once. Thin:
//! each handler reads the request and calls the one `App` method the pages call too.

use super::api::{answer, json_body};
use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use baton::app::{App, BulkItem, ClaimView, DecisionRequest};
use baton::auth::Actor;
use baton::contract::decision::ReviewerOutcome;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClaimBody {
    /// An admin takes over another reviewer's claim.
    #[serde(default)]
    takeover: bool,
}

/// `POST /api/v1/handoffs/{key}/claim`, body `{}` or `{"takeover": true}` (empty is `{}`).
/// `Content-Type: application/json` is required even with no body: like the decision, a
/// cross-site form must not be able to post it with a reviewer's session.
pub async fn claim(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ClaimView>, ApiError> {
    refuse_agents(&actor, "claim")?;
    let body: ClaimBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => json_body(&headers, &Bytes::from_static(b"{}"))?,
        false => json_body(&headers, &body)?,
    };
    let view = blocking(move || app.cx().claim(&key, &actor, body.takeover)).await??;
    Ok(Json(view))
}

/// `DELETE /api/v1/handoffs/{key}/claim`: the holder (or an admin) releases it.
pub async fn release(
    State(app): State<App>,
    Caller(actor): Caller,
    Path(key): Path<String>,
) -> Result<Json<ClaimView>, ApiError> {
    refuse_agents(&actor, "release claims on")?;
    let view = blocking(move || app.cx().release_claim(&key, &actor)).await??;
    Ok(Json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkBody {
    /// The handoffs by key alone: for outcomes other than `approved`.
    #[serde(default)]
    keys: Option<Vec<String>>,
    /// The handoffs with what the reviewer read of each (`revision`, `handoff_sha256`).
    #[serde(default)]
    items: Option<Vec<BulkItem>>,
    outcome: ReviewerOutcome,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    to_agent: Option<String>,
}

/// `POST /api/v1/decisions` with `{items | keys, outcome, comment?, to_agent?}`: 200 and one
/// result per key, `{key, status}` plus what the single call would have answered: `decision`
/// (200), `progress` (202), or `error` and its details. An approval names what was read of
/// each handoff (`items`; the core refuses one that does not). In a cluster each key is
/// decided by the node that serves it (`peers::bulk`), and the results come back in order.
pub async fn decide_many(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    refuse_agents(&actor, "decide")?;
    let parsed: BulkBody = json_body(&headers, &body)?;
    let request = DecisionRequest {
        outcome: parsed.outcome.into(),
        comment: parsed.comment,
        revision: None,
        handoff_sha256: None,
        to_agent: parsed.to_agent,
        edits: Default::default(),
    };
    let items = match (parsed.keys, parsed.items) {
        (Some(keys), None) => {
            baton::app::check_bulk_keys(&keys)?;
            keys.into_iter().map(BulkItem::unbound).collect()
        }
        (None, Some(items)) => items,
        _ => {
            return Err(ApiError::Unprocessable(
                "name the handoffs in \"items\" ([{\"key\", \"revision\", \"handoff_sha256\"}]) or, for outcomes other than approved, in \"keys\": one of the two".into(),
            ))
        }
    };
    // The request's own rules, for all keys at once (before any goes to another node).
    baton::app::check_bulk_items(&items, &request)?;
    if !crate::peers::merge::covers_others(&app, &headers) {
        return Ok(Json(
            json!({ "results": decide_here(&app, items, request, actor).await? }),
        ));
    }
    // The same body for every node, less its handoffs (it parsed above, so it is an object).
    let mut template: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(map) = template.as_object_mut() {
        map.remove("keys");
        map.remove("items");
    }
    let results = crate::peers::bulk::across(&app, &headers, &template, items, |here| {
        decide_here(&app, here, request, actor)
    })
    .await?;
    Ok(Json(json!({ "results": results })))
}

/// Decides `items` on this node: one result per key, as `decide_many` answers them.
async fn decide_here(
    app: &App,
    items: Vec<BulkItem>,
    request: DecisionRequest,
    actor: Actor,
) -> Result<Vec<Value>, ApiError> {
    let app = app.clone();
    let results = blocking(move || app.cx().decide_many(&items, request, &actor)).await??;
    Ok(results
        .into_iter()
        .map(|(key, result)| {
            let (status, field, body) = match result {
                Ok(decided) => {
                    let (status, Json(body)) = answer(decided);
                    let field = if status.as_u16() == 200 {
                        "decision"
                    } else {
                        "progress"
                    };
                    (status, field, body)
                }
                Err(e) => {
                    let (status, body) = ApiError::from(e).status_and_body();
                    (status, "", body)
                }
            };
            let mut item = json!({ "key": key, "status": status.as_u16() });
            match field {
                "" => merge(&mut item, body),
                field => item[field] = body,
            }
            item
        })
        .collect())
}

/// Who may act is settled before what the body says (as for a single decision).
fn refuse_agents(actor: &Actor, what: &str) -> Result<(), ApiError> {
    match actor {
        Actor::Agent { .. } => Err(ApiError::Forbidden(format!(
            "agent tokens cannot {what} handoffs"
        ))),
        Actor::Reviewer { .. } => Ok(()),
    }
}

fn merge(item: &mut Value, body: Value) {
    if let (Value::Object(item), Value::Object(body)) = (item, body) {
        item.extend(body);
    }
}
