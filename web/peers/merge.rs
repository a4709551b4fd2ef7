//! Answers that cover every workspace of a cluster: this node's part and each other live
//! node's, asked on the caller's behalf (this node's signed assertion of who is acting, see
//! `super::trust`) and merged in the answer's order. A node
//! that does not answer is named (`x-baton-partial` on a list, `partial` and a note in a
//! search), never silently left out.

use super::{send, trust, FORWARDED_BY};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use baton::app::{App, Summary};
use baton::cluster::Peer;
use baton::search::Hits;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// On a list answered in part: the nodes that did not answer, comma-separated.
pub const PARTIAL: HeaderName = HeaderName::from_static("x-baton-partial");

/// How long a node may take to give its part.
const PART_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest part read from one node.
const MAX_PART_BYTES: usize = 64 << 20;

/// The other nodes' parts of an answer, and the nodes that gave none (each with why).
pub struct Parts<T> {
    pub answers: Vec<T>,
    pub missing: Vec<String>,
}

impl<T> Parts<T> {
    fn none() -> Parts<T> {
        Parts {
            answers: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// Whether an answer should cover the other nodes: in a cluster, and not itself a node
/// asking another for its part.
pub fn covers_others(app: &App, headers: &HeaderMap) -> bool {
    app.cluster().is_some() && !headers.contains_key(FORWARDED_BY)
}

/// Asks every other live node for `path_and_query` (a GET) on the caller's behalf.
pub async fn ask_others<T: DeserializeOwned>(
    app: &App,
    headers: &HeaderMap,
    path_and_query: &str,
) -> Parts<T> {
    if !covers_others(app, headers) {
        return Parts::none();
    }
    let peers = crate::blocking({
        let app = app.clone();
        move || app.peers()
    })
    .await;
    let peers = match peers {
        Ok(Ok(peers)) => peers,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the live nodes; answering for this node only");
            let mut parts = Parts::none();
            parts
                .missing
                .push(format!("the other nodes (the database: {e})"));
            return parts;
        }
        Err(_) => return Parts::none(),
    };
    let Some(acting) = trust::acting_of(app, headers).await else {
        let mut parts = Parts::none();
        parts
            .missing
            .push("the other nodes (the caller's credentials no longer hold)".into());
        return parts;
    };
    let asks = peers
        .iter()
        .map(|peer| ask(app, peer, headers, &acting, path_and_query));
    let mut parts = Parts::none();
    for (peer, answer) in peers.iter().zip(futures_util::future::join_all(asks).await) {
        match answer {
            Ok(answer) => parts.answers.push(answer),
            Err(why) => {
                tracing::warn!(node = %peer.node, why, "a node gave no part of a merged answer");
                parts.missing.push(format!("{} ({why})", peer.node));
            }
        }
    }
    parts
}

async fn ask<T: DeserializeOwned>(
    app: &App,
    peer: &Peer,
    headers: &HeaderMap,
    acting: &trust::Acting,
    path_and_query: &str,
) -> Result<T, String> {
    let answer = tokio::time::timeout(PART_TIMEOUT, async {
        let body = Default::default();
        let answer = send(
            app,
            peer,
            Method::GET,
            path_and_query,
            headers,
            body,
            acting,
            Some(PART_TIMEOUT),
        )
        .await?;
        if answer.status() != StatusCode::OK {
            return Err(format!("it answered {}", answer.status()));
        }
        let body = http_body_util::Limited::new(answer.into_body(), MAX_PART_BYTES);
        body.collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|_| "it did not answer in time".to_string())??;
    serde_json::from_slice(&answer).map_err(|e| format!("its answer is not what was asked: {e}"))
}

/// A list's lines from every node in the list's order (oldest first: `received_at`, then
/// key), each handoff once (a handoff moving between nodes may be in two parts), and at most
/// `limit`.
pub fn lists(
    mine: Vec<Summary>,
    others: Parts<Vec<Summary>>,
    limit: Option<usize>,
) -> Vec<Summary> {
    let mut all: Vec<Summary> = mine
        .into_iter()
        .chain(others.answers.into_iter().flatten())
        .collect();
    all.sort_by(|a, b| (&a.received_at, &a.key).cmp(&(&b.received_at, &b.key)));
    all.dedup_by(|a, b| a.key == b.key);
    if let Some(limit) = limit {
        all.truncate(limit);
    }
    all
}

/// Search answers from every node: the hits ranked by score and cut to the page
/// (`offset`, `limit`: each part was asked from its first hit), totals and facets summed.
pub fn searches(mine: Hits, others: Parts<Hits>, offset: usize, limit: usize) -> Hits {
    let mut merged = mine;
    for part in others.answers {
        merged.total_estimate = match (merged.total_estimate, part.total_estimate) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(merged.total as u64) + b.unwrap_or(part.total as u64)),
        };
        merged.total += part.total;
        merged.total_is_lower_bound |= part.total_is_lower_bound;
        merged.partial |= part.partial;
        merged.facets_truncated |= part.facets_truncated;
        merged.hits.extend(part.hits);
        for (name, n) in part.facets.workspace {
            *merged.facets.workspace.entry(name).or_default() += n;
        }
        for (name, n) in part.facets.kind {
            *merged.facets.kind.entry(name).or_default() += n;
        }
        for note in part.notes {
            if !merged.notes.contains(&note) {
                merged.notes.push(note);
            }
        }
    }
    // Each node's facets were cut; their sum is cut as one node's would be.
    merged.facets_truncated |= baton::index::cut_facet(&mut merged.facets.workspace);
    merged.facets_truncated |= baton::index::cut_facet(&mut merged.facets.kind);
    merged.hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    merged.hits = merged.hits.into_iter().skip(offset).take(limit).collect();
    if !others.missing.is_empty() {
        merged.partial = true;
        merged.notes.push(format!(
            "not searched: the workspaces of {}: no answer",
            others.missing.join(", ")
        ));
    }
    merged
}

/// One event of another node's stream, as it was sent; `None` once that stream ended.
pub type Relayed = Option<axum::response::sse::Event>;

/// The event streams of the other live nodes, opened on the caller's behalf. Each
/// ends with `None` when its node's stream ends: the merged stream then ends too, and the
/// client reconnects (as EventSource does by itself) to the nodes live then.
pub async fn event_streams(
    app: &App,
    headers: &HeaderMap,
) -> Vec<futures_util::stream::BoxStream<'static, Relayed>> {
    use futures_util::StreamExt;
    if !covers_others(app, headers) {
        return Vec::new();
    }
    let peers = crate::blocking({
        let app = app.clone();
        move || app.peers()
    })
    .await;
    let Ok(Ok(peers)) = peers else {
        tracing::warn!("cannot read the live nodes; the event stream covers this node only");
        return Vec::new();
    };
    let Some(acting) = trust::acting_of(app, headers).await else {
        return Vec::new();
    };
    let mut streams = Vec::new();
    for peer in peers {
        match open_stream(app, &peer, headers, &acting).await {
            Ok(body) => streams.push(
                events_of(body)
                    .chain(futures_util::stream::once(async { None }))
                    .boxed(),
            ),
            Err(why) => {
                tracing::warn!(node = %peer.node, why, "the event stream leaves out a node that did not answer")
            }
        }
    }
    streams
}

async fn open_stream(
    app: &App,
    peer: &Peer,
    headers: &HeaderMap,
    acting: &trust::Acting,
) -> Result<axum::body::Body, String> {
    let body = Default::default();
    let answer = send(
        app,
        peer,
        Method::GET,
        "/api/v1/events",
        headers,
        body,
        acting,
        Some(PART_TIMEOUT),
    )
    .await?;
    if answer.status() != StatusCode::OK {
        return Err(format!("it answered {}", answer.status()));
    }
    Ok(answer.into_body())
}

/// The events of an SSE body, parsed back (`event:` and `data:` lines; comments, such as
/// keep-alives, are dropped: the merged stream sends its own).
fn events_of(body: axum::body::Body) -> futures_util::stream::BoxStream<'static, Relayed> {
    use futures_util::StreamExt;
    let frames =
        futures_util::stream::unfold((body, Vec::<u8>::new()), |(mut body, mut buf)| async move {
            loop {
                if let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let frame: Vec<u8> = buf.drain(..end + 2).collect();
                    return Some((frame, (body, buf)));
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            buf.extend_from_slice(&data);
                        }
                        if buf.len() > MAX_PART_BYTES {
                            return None;
                        }
                    }
                    _ => return None,
                }
            }
        });
    frames
        .filter_map(|frame| async move { parse_event(&frame).map(Some) })
        .boxed()
}

fn parse_event(frame: &[u8]) -> Option<axum::response::sse::Event> {
    let text = std::str::from_utf8(frame).ok()?;
    let (mut name, mut data) = (None, Vec::new());
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim_start().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    let name = name?;
    Some(
        axum::response::sse::Event::default()
            .event(name)
            .data(data.join("\n")),
    )
}
