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
    /// The id of the last delivery of the page before.
    after: Option<String>,
}

/// Deliveries on one page.
const PAGE: usize = 100;

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeliveriesPage {
    chrome: Chrome,
    deliveries: Vec<Delivery>,
    disabled: Vec<(String, String)>,
    state: String,
    /// The link to the next (older) page, when this one is full.
    older: Option<String>,
    /// The page shown is not the first.
    paged: bool,
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
    show(app, &s, state, f.after, None).await
}

async fn show(
    app: App,
    s: &baton::login::SignedIn,
    state: String,
    after: Option<String>,
    mut error: Option<String>,
) -> Response {
    let wanted = parse_state(&state);
    let paged = after.is_some();
    let listed = crate::blocking(move || {
        let page = app.deliveries(wanted, after.as_deref(), PAGE);
        (page, app.disabled_endpoints())
    })
    .await;
    let Ok((page, disabled)) = listed else {
        return super::internal_error();
    };
    let deliveries = page.unwrap_or_else(|e| {
        error.get_or_insert(e.to_string());
        Vec::new()
    });
    let state = wanted.map_or("", |w| w.as_str()).to_string();
    let older = (deliveries.len() == PAGE).then(|| {
        let last = deliveries.last().map_or("", |d| d.id.as_str());
        let mut query = form_urlencoded::Serializer::new(String::new());
        if !state.is_empty() {
            query.append_pair("state", &state);
        }
        format!("/deliveries?{}", query.append_pair("after", last).finish())
    });
    render(&DeliveriesPage {
        chrome: Chrome::new(s, "deliveries"),
        deliveries,
        disabled,
        older,
        paged,
        state,
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
        Ok(Err(e)) => show(app, &s, "dead".into(), None, Some(e.to_string())).await,
        Err(_) => super::internal_error(),
    }
}
