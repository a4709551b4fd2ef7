//! `GET /api/v1/events`: the live event stream (Server-Sent Events). Each SSE event is named
//! by its type and carries the event JSON; agents see only their workspaces' events (never
//! one about no workspace, such as a reviewer's passkey, whatever their pattern). In a
//! cluster the stream carries every live node's events (see `peers::merge::event_streams`).

use super::{peers, Caller};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use baton::app::App;
use futures_util::stream::BoxStream;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

/// Whether `actor` is told about an event of workspace `ws`: an event about no workspace is
/// for people only, even for an agent whose pattern (`*`) matches the empty name.
fn visible(actor: &baton::auth::Actor, ws: &str) -> bool {
    match actor {
        baton::auth::Actor::Agent { .. } if ws.is_empty() => false,
        _ => actor.can_see(ws),
    }
}

pub async fn events(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mine = BroadcastStream::new(app.subscribe()).filter_map(move |item| match item {
        Ok(event) if visible(&actor, &event.workspace) => {
            let data = serde_json::to_string(&event).expect("events always serialize");
            Some(Some(Event::default().event(event.kind.as_str()).data(data)))
        }
        Ok(_) => None,
        // A slow reader missed events: say so, so it can re-read the state.
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            Some(Some(Event::default().event("lagged").data(n.to_string())))
        }
    });
    let mut streams: Vec<BoxStream<'static, peers::merge::Relayed>> =
        peers::merge::event_streams(&app, &headers).await;
    streams.push(Box::pin(mine));
    // A node's stream that ends (`None`) ends the merged one, so the client reconnects to the
    // nodes live then.
    let merged = futures_util::stream::select_all(streams)
        .take_while(Option::is_some)
        .filter_map(|event| event.map(Ok));
    // End the stream on shutdown, or graceful shutdown would wait for every open client.
    let stream =
        futures_util::StreamExt::take_until(merged, app.shutdown_token().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
