//! Bulk decisions across a cluster: each key of `POST /api/v1/decisions` (and of the queue's
//! bulk form) is decided by the node that serves its workspace. The keys another node serves
//! go to it in one request per node (a bulk request of their own, on the caller's behalf
//! (signed, see `super::trust`), marked forwarded so it is decided there and not sent on), and the per-key
//! results are put back in the order of the keys asked for.

use super::{send, trust};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use baton::app::{App, BulkItem, Scope};
use baton::cluster::{Holder, Peer};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a node may take to decide its part: each key is a durable write and an audit
/// append there, up to `MAX_BULK` of them.
const BULK_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read from one node.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Where each key is decided.
struct Split {
    /// Keys this node decides (it serves them, or nobody does and it answers 404).
    here: Vec<BulkItem>,
    /// Keys another live node serves, by node.
    elsewhere: Vec<(Peer, Vec<BulkItem>)>,
    /// Keys whose node stopped answering (its lease lapsed), not taken over yet: their
    /// result is a 503.
    unserved: Vec<String>,
}

/// Decides `items` across the cluster with `template` (the bulk body less its handoffs):
/// those this node serves by `here`, the others on their nodes (`headers`: the caller's, with
/// its credentials), each item with what was read of it. One result per key, in order.
pub async fn across<F, Fut>(
    app: &App,
    headers: &HeaderMap,
    template: &Value,
    items: Vec<BulkItem>,
    here: F,
) -> Result<Vec<Value>, crate::ApiError>
where
    F: FnOnce(Vec<BulkItem>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Value>, crate::ApiError>>,
{
    let keys: Vec<String> = items.iter().map(|i| i.key.clone()).collect();
    let split = split(app, items).await;
    let acting = match split.elsewhere.is_empty() {
        true => None,
        false => trust::acting_of(app, headers).await,
    };
    let asks = split
        .elsewhere
        .iter()
        .map(|(peer, group)| decide_on(app, peer, headers, acting.as_ref(), template, group));
    let mine = async {
        match split.here.is_empty() {
            true => Ok(Vec::new()),
            false => here(split.here.clone()).await,
        }
    };
    let (theirs, mine) = tokio::join!(futures_util::future::join_all(asks), mine);
    let mut results = mine?;
    results.extend(theirs.into_iter().flatten());
    let ttl = app.cluster().map_or(15, |c| c.ttl.as_secs());
    results.extend(split.unserved.iter().map(|k| unavailable(k, ttl)));
    Ok(in_order(&keys, results))
}

/// Splits `items` by the node that serves each (one lookup a key, in the database).
async fn split(app: &App, items: Vec<BulkItem>) -> Split {
    let app = app.clone();
    let found = crate::blocking(move || {
        let mut split = Split {
            here: Vec::new(),
            elsewhere: Vec::new(),
            unserved: Vec::new(),
        };
        let mut by_node: BTreeMap<String, (Peer, Vec<BulkItem>)> = BTreeMap::new();
        for item in items {
            match app.holder_of(&Scope::Handoff(item.key.clone())) {
                Ok(Holder::Here | Holder::Nobody) => split.here.push(item),
                Ok(Holder::Peer(peer)) => by_node
                    .entry(peer.node.clone())
                    .or_insert_with(|| (peer, Vec::new()))
                    .1
                    .push(item),
                // Unknown (the database did not answer) or unserved: not decided now.
                Ok(Holder::Unserved) | Err(_) => split.unserved.push(item.key),
            }
        }
        split.elsewhere = by_node.into_values().collect();
        split
    })
    .await;
    found.unwrap_or_else(|_| Split {
        here: Vec::new(),
        elsewhere: Vec::new(),
        unserved: Vec::new(),
    })
}

/// The result of a key whose node cannot decide it now: what a single decision answers.
fn unavailable(key: &str, ttl_s: u64) -> Value {
    let message = format!("the node that served this stopped answering; another node takes it over within {} s, try again then", 2 * ttl_s);
    let (status, body) = crate::ApiError::Unavailable(message).status_and_body();
    let mut item = json!({ "key": key, "status": status.as_u16() });
    if let (Some(item), Value::Object(body)) = (item.as_object_mut(), body) {
        item.extend(body);
    }
    item
}

/// Asks `peer` to decide `items` with `request` (the bulk body less its handoffs); one result
/// per key, a 502 for each when the node fails to answer.
async fn decide_on(
    app: &App,
    peer: &Peer,
    headers: &HeaderMap,
    acting: Option<&trust::Acting>,
    request: &Value,
    items: &[BulkItem],
) -> Vec<Value> {
    let mut body = request.clone();
    // With what was read of each: the node that serves it holds the approval to it.
    body["items"] = json!(items);
    let answer = match acting {
        Some(acting) => ask(app, peer, headers, acting, &body).await,
        None => Err("the caller's credentials no longer hold".to_string()),
    };
    match answer {
        Ok(results) => results,
        Err(why) => {
            tracing::warn!(node = %peer.node, why, "a node did not decide its part of a bulk decision");
            items
                .iter()
                .map(|item| {
                    json!({
                        "key": item.key,
                        "status": 502,
                        "error": format!("node {} serves this but did not answer ({why}); it may or may not be decided: read it, then try again", peer.node),
                    })
                })
                .collect()
        }
    }
}

async fn ask(
    app: &App,
    peer: &Peer,
    headers: &HeaderMap,
    acting: &trust::Acting,
    body: &Value,
) -> Result<Vec<Value>, String> {
    let mut headers = headers.clone();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = axum::body::Bytes::from(body.to_string());
    let answer = tokio::time::timeout(
        BULK_TIMEOUT,
        send(
            app,
            peer,
            Method::POST,
            "/api/v1/decisions",
            &headers,
            body,
            acting,
            Some(BULK_TIMEOUT),
        ),
    )
    .await
    .map_err(|_| "it did not answer in time".to_string())??;
    let status = answer.status();
    let bytes = tokio::time::timeout(
        BULK_TIMEOUT,
        http_body_util::Limited::new(answer.into_body(), MAX_ANSWER_BYTES).collect(),
    )
    .await
    .map_err(|_| "its answer did not finish in time".to_string())?
    .map_err(|e| e.to_string())?
    .to_bytes();
    if status != StatusCode::OK {
        return Err(format!(
            "it answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        ));
    }
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    match answer["results"].as_array() {
        Some(results) => Ok(results.clone()),
        None => Err("its answer has no results".into()),
    }
}

/// Puts the results back in the order of `keys` (a key named twice has a result for each, in
/// the order its node answered them).
fn in_order(keys: &[String], results: Vec<Value>) -> Vec<Value> {
    let mut by_key: BTreeMap<String, std::collections::VecDeque<Value>> = BTreeMap::new();
    for r in results {
        if let Some(key) = r["key"].as_str() {
            by_key.entry(key.to_string()).or_default().push_back(r);
        }
    }
    keys.iter()
        .map(|key| {
            by_key
                .get_mut(key)
                .and_then(|r| r.pop_front())
                .unwrap_or_else(|| {
                    json!({"key": key, "status": 502,
                       "error": "the node that serves it gave no result for this key"})
                })
        })
        .collect()
}

/// The queue's bulk form in a cluster: each checked line decided by the node that serves it,
/// with the person's session (and its CSRF token, as the API asks of a cookie), bound to the
/// revision the page rendered. One result per line, `{key, status, error?}`, in order; or why
/// the request was refused whole.
pub async fn on_the_page(
    app: &App,
    headers: &HeaderMap,
    csrf: &str,
    template: &Value,
    items: Vec<BulkItem>,
    actor: baton::auth::Actor,
) -> Result<Vec<Value>, String> {
    let mut headers = headers.clone();
    if let Ok(token) = HeaderValue::from_str(csrf) {
        headers.insert(crate::auth::CSRF_HEADER, token);
    }
    let request =
        serde_json::from_value::<PageRequest>(template.clone()).map_err(|e| e.to_string())?;
    let request = baton::app::DecisionRequest {
        outcome: request.outcome,
        comment: request.comment,
        revision: None,
        handoff_sha256: None,
        to_agent: None,
        edits: Default::default(),
    };
    // Refused whole here as on the nodes: an approval of a line without its revision.
    baton::app::check_bulk_items(&items, &request).map_err(|e| e.to_string())?;
    let here = move |items: Vec<BulkItem>| {
        let app = app.clone();
        async move {
            let decided = crate::blocking(move || {
                app.cx().decide_many_via(
                    &items,
                    request,
                    &actor,
                    baton::contract::decision::Via::Page,
                )
            })
            .await??;
            Ok(decided
                .into_iter()
                .map(|(key, result)| match result {
                    Ok(_) => json!({"key": key, "status": 200}),
                    Err(e) => {
                        let (status, body) = crate::ApiError::from(e).status_and_body();
                        json!({"key": key, "status": status.as_u16(), "error": body["error"]})
                    }
                })
                .collect())
        }
    };
    across(app, &headers, template, items, here)
        .await
        .map_err(|e| e.to_string())
}

/// The queue form's decision, as the API's bulk body says it.
#[derive(serde::Deserialize)]
struct PageRequest {
    outcome: baton::contract::Outcome,
    comment: Option<String>,
}
