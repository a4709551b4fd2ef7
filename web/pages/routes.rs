//! `/routes`: each route whose policy runs in shadow mode, and how often it agreed with the
//! people deciding, per day (`App::policy_agreement`), so a team can move a route to
//! auto-approve on evidence.

use super::{render, Chrome};
use crate::auth::Viewer;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use baton::app::{App, RouteAgreement};

#[derive(Template)]
#[template(path = "routes.html")]
struct RoutesPage {
    chrome: Chrome,
    routes: Vec<RouteAgreement>,
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer) -> Response {
    let actor = s.actor.clone();
    match crate::blocking(move || app.policy_agreement(&actor)).await {
        Ok(routes) => render(&RoutesPage {
            chrome: Chrome::new(&s, "routes"),
            routes,
        }),
        Err(_) => super::internal_error(),
    }
}
