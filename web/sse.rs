//! `GET /api/v1/events`: the live event stream (Server-Sent Events). Each SSE event is named
//! by its type and carries the event JSON; agents see only their workspaces' events.

use super::Caller;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use baton::app::App;
use std::convert::Infallible;
use std::time::Duration;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::{Stream, StreamExt};

pub async fn events(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(app.subscribe()).filter_map(move |item| match item {
        Ok(event) if actor.can_see(&event.workspace) => {
            let data = serde_json::to_string(&event).expect("events always serialize");
            Some(Ok(Event::default().event(event.kind.as_str()).data(data)))
        }
        Ok(_) => None,
        // A slow reader missed events: say so, so it can re-read the state.
        Err(BroadcastStreamRecvError::Lagged(n)) => {
            Some(Ok(Event::default().event("lagged").data(n.to_string())))
        }
    });
    // End the stream on shutdown, or graceful shutdown would wait for every open client.
    let stream =
        futures_util::StreamExt::take_until(stream, app.shutdown_token().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
