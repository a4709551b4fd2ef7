//! `/reviewers/passkeys`: the signed-in reviewer's passkeys, a control to register one (the
//! page's script runs `navigator.credentials.create` between the two JSON calls of
//! `web/passkeys.rs`) and a form to remove each (which the script posts with an assertion
//! made for removing that passkey). Over `App::passkeys_of` / `passkey_remove`.

use super::forms::{csrf_refused, Form};
use super::{flash, render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, PasskeyProof, PasskeyView};

const PAGE: &str = "/reviewers/passkeys";

#[derive(Template)]
#[template(path = "passkeys.html")]
struct PasskeysPage {
    chrome: Chrome,
    keys: Vec<PasskeyView>,
    /// Why passkeys cannot be used on this daemon, if they cannot.
    off: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer) -> Response {
    let said = flash::take(&s, PAGE).unwrap_or_default();
    render(&PasskeysPage {
        chrome: Chrome::new(&s, "reviewers"),
        keys: app.passkeys_of(&s.actor),
        off: app.passkeys_ready().err(),
        notice: said.notice,
        error: said.error,
    })
}

/// `POST /reviewers/passkeys/remove` with `id`, `passkey_ceremony` and `passkey_credential`
/// (an assertion made for removing `id`); 303 to the page.
pub async fn remove(State(app): State<App>, Viewer(s): Viewer, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let id = form.get("id").unwrap_or_default().to_string();
    let proof = PasskeyProof {
        ceremony: form.get("passkey_ceremony").map(str::to_string),
        credential: form.get("passkey_credential").map(str::to_string),
        ..Default::default()
    };
    let actor = s.actor.clone();
    let said = match crate::blocking(move || app.passkey_remove(&actor, &id, &proof)).await {
        Ok(Ok(true)) => flash::Flash {
            notice: Some("Passkey removed: it confirms nothing any more.".into()),
            ..Default::default()
        },
        Ok(Ok(false)) => flash::Flash {
            error: Some("No such passkey of yours (removed already?).".into()),
            ..Default::default()
        },
        Ok(Err(e)) => flash::Flash {
            error: Some(e.to_string()),
            ..Default::default()
        },
        Err(_) => return super::internal_error(),
    };
    flash::put(&s, PAGE, said);
    Redirect::to(PAGE).into_response()
}
