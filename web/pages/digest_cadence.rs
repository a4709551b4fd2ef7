//! The digest section of `/reviewers`: the minutes between the viewer's digests (every
//! mailed reviewer's for an admin), the configured default beside, and a form to change it.
//! The same `App::digest_cadences` and `App::set_digest_cadence` the core keeps.

use super::flash;
use super::forms::{csrf_refused, Form};
use crate::auth::Viewer;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::{App, Cadence};
use baton::auth::Actor;

const PAGE: &str = "/reviewers";

/// The cadences the section lists for `actor` (none for an agent).
pub fn lines(app: &App, actor: &Actor) -> Vec<Cadence> {
    app.digest_cadences(actor).unwrap_or_default()
}

/// `POST /reviewers/digest` with `user` (default: the viewer) and `every_min`; 303 to the page.
pub async fn set(State(app): State<App>, Viewer(s): Viewer, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    let actor = s.actor.clone();
    let user = match form.get("user").map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => u.to_string(),
        None => match &actor {
            Actor::Reviewer { name, .. } => name.clone(),
            _ => String::new(),
        },
    };
    let every = form.get("every_min").unwrap_or_default().to_string();
    let set = crate::blocking(move || app.set_digest_cadence(&actor, &user, &every)).await;
    let said = match set {
        Ok(Ok(c)) => flash::Flash {
            notice: Some(format!(
                "{}'s digests now go out every {} minute(s), from the next such boundary.",
                c.name, c.every_min
            )),
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
