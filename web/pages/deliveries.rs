//! `/deliveries`: the outbox's notifications with every attempt (status, error, time), the
//! endpoints their receivers disabled, and for admins a retry button on dead ones.

use super::forms::{csrf_refused, Form};
use super::{render, Chrome};
use crate::auth::Viewer;
use crate::deliveries::is_admin;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::App;
use baton::outbox::{Delivery, State as DeliveryState};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Filter {
    state: Option<String>,
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    deliveries: Vec<Delivery>,
    disabled: Vec<(String, String)>,
    state: String,
    /// The filter's choices, each with whether it is the one shown.
    options: Vec<(&'static str, bool)>,
    admin: bool,
    error: Option<String>,
}

fn parse_state(s: &str) -> Option<DeliveryState> {
    match s {
        "pending" => Some(DeliveryState::Pending),
        "delivered" => Some(DeliveryState::Delivered),
        "dead" => Some(DeliveryState::Dead),
        _ => None,
    }
}

pub async fn page(State(app): State<App>, Viewer(s): Viewer, Query(f): Query<Filter>) -> Response {
    let state = f.state.unwrap_or_default();
    show(app, &s, state, None).await
}

async fn show(
    app: App,
    s: &baton::login::SignedIn,
    state: String,
    error: Option<String>,
) -> Response {
    let wanted = parse_state(&state);
    let listed = crate::blocking(move || (app.deliveries(wanted), app.disabled_endpoints())).await;
    let Ok((deliveries, disabled)) = listed else {
        return super::internal_error();
    };
    render(&DeliveriesPage {
        chrome: Chrome::new(s, "deliveries"),
        deliveries,
        disabled,
        state: wanted.map_or("", |w| w.as_str()).to_string(),
        options: [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Dead,
        ]
        .map(|o| (o.as_str(), Some(o) == wanted))
        .to_vec(),
        admin: is_admin(&s.actor),
        error,
    })
}

/// `POST /deliveries/{id}/retry`: an admin sends a dead delivery again; 303 to the list.
pub async fn retry(
    State(app): State<App>,
    Viewer(s): Viewer,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    if !form.csrf_ok(&s) {
        return csrf_refused();
    }
    if !is_admin(&s.actor) {
        return (StatusCode::FORBIDDEN, "Only an admin retries deliveries.").into_response();
    }
    let app2 = app.clone();
    match crate::blocking(move || app2.retry_delivery(&id)).await {
        Ok(Ok(_)) => Redirect::to("/deliveries?state=pending").into_response(),
        Ok(Err(e)) => show(app, &s, "dead".into(), Some(e.to_string())).await,
        Err(_) => super::internal_error(),
    }
}
