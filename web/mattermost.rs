//! `POST /chat/mattermost/actions`: the requests Mattermost's server sends when someone clicks
//! a button of a post baton made (JSON: `user_id`, `post_id`, `channel_id`, `context`). No
//! session and no signature (Mattermost signs nothing): the button's context must carry the
//! daemon's MAC (`App::mattermost_action` checks it, the clicker and the handoff's rules, and
//! decides). The answer is what Mattermost reads back: `update` replaces the post once
//! decided; `ephemeral_text` tells the clicker alone why nothing was decided.
//!
//! `POST /chat/mattermost/dialogs`: the submissions of the comment dialogs Request changes
//! and Reject open (JSON: `callback_id`, `state`, `user_id`, `channel_id`, `submission`,
//! `cancelled`); the state must carry the daemon's MAC. Answered empty once taken, else with
//! `error` (or `errors` by field), which Mattermost shows in the dialog.

use crate::blocking;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use baton::app::App;

pub async fn actions(State(app): State<App>, body: Bytes) -> Response {
    let taken = blocking(move || app.mattermost_action(&body)).await;
    answer(taken)
}

pub async fn dialogs(State(app): State<App>, body: Bytes) -> Response {
    let taken = blocking(move || app.mattermost_dialog(&body)).await;
    answer(taken)
}

fn answer<E: IntoResponse>(taken: Result<baton::app::MattermostTaken, E>) -> Response {
    let taken = match taken {
        Err(e) => return e.into_response(),
        Ok(t) => t,
    };
    // A click Mattermost sent that cannot decide is answered 200 with the reason (Mattermost
    // shows `ephemeral_text` only then); a request not proven one of baton's buttons is
    // refused as such.
    let status = match &taken.result {
        Err(e) if e.untrusted() => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    };
    (status, axum::Json(taken.answer())).into_response()
}
