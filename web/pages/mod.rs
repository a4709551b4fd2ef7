//! The reviewer's pages: server-rendered HTML from the askama templates in `templates/`
//! (escaped by default, checked at compile time), over the same `App` methods as the API.
//! Forms post with a CSRF token and answer 303 (Post/Redirect/Get); the pages work without
//! JavaScript, and `assets/app.js` adds live updates, keys and notifications.

mod assets;
mod attention;
mod canaries;
mod chat_link_confirm;
mod chat_links;
mod decision_form;
mod deliveries;
mod digest_cadence;
mod events;
mod fields;
mod flash;
mod forms;
mod grants;
mod handoff;
mod handoff_view;
mod links;
mod login;
mod passkeys;
mod preview;
mod queue;
mod reviewers;
mod routes;
mod search;
mod view;
mod workspace;

use crate::Routes;
use askama::Template;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use baton::login::SignedIn;

/// The pages' routes; each one requires a session except `/login`, the mail's one-time action
/// links (`/act/{token}`: the token is the credential) and the static assets.
pub fn routes() -> Routes {
    Routes::new()
        .at(Method::GET, "/login", login::form)
        .at(Method::POST, "/login", login::submit)
        .at(Method::POST, "/logout", login::logout)
        .at(Method::GET, "/", queue::page)
        .at(Method::POST, "/decisions", queue::bulk)
        .at(Method::GET, "/handoffs/{key}", handoff::page)
        .at(Method::POST, "/handoffs/{key}/decision", handoff::decide)
        .at(Method::POST, "/handoffs/{key}/claim", handoff::claim)
        .at(
            Method::GET,
            "/handoffs/{key}/preview/{*path}",
            preview::page,
        )
        .at(Method::GET, "/w/{workspace}", workspace::page)
        .at(Method::POST, "/w/{workspace}/owner", workspace::set_owner)
        .at(Method::GET, "/w/{workspace}/files/{*path}", workspace::file)
        .at(Method::GET, "/events", events::page)
        .at(Method::GET, "/search", search::page)
        .at(Method::GET, "/routes", routes::page)
        .at(Method::GET, "/reviewers", reviewers::page)
        .at(Method::POST, "/reviewers/away", reviewers::set_away)
        .at(Method::POST, "/reviewers/digest", digest_cadence::set)
        .at(Method::GET, "/reviewers/passkeys", passkeys::page)
        .at(Method::GET, "/reviewers/chat", chat_links::page)
        .at(Method::POST, "/reviewers/chat/link", chat_links::link)
        .at(Method::POST, "/reviewers/chat/unlink", chat_links::unlink)
        .at(Method::GET, "/chat/links/confirm", chat_link_confirm::page)
        .at(
            Method::POST,
            "/chat/links/confirm",
            chat_link_confirm::confirm,
        )
        .at(Method::POST, "/reviewers/passkeys/remove", passkeys::remove)
        .at(
            Method::POST,
            "/reviewers/grants/{id}/revoke",
            grants::revoke,
        )
        .at(Method::GET, "/deliveries", deliveries::page)
        .at(Method::POST, "/deliveries/{id}/retry", deliveries::retry)
        .at(Method::GET, "/static/{file}", assets::file)
        .at(Method::GET, "/act/{token}", links::confirm)
        .at(Method::POST, "/act/{token}", links::decide)
}

/// What every page's frame shows: who is signed in, the CSRF token for its forms.
pub struct Chrome {
    pub user: String,
    pub csrf: String,
    pub nav: &'static str,
    pub assets: &'static str,
}

impl Chrome {
    pub fn new(s: &SignedIn, nav: &'static str) -> Chrome {
        Chrome {
            user: s.name.clone(),
            csrf: s.csrf.clone(),
            nav,
            assets: *assets::VERSION,
        }
    }
}

/// Renders a page; a template error is a bug, logged and answered 500 without details.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// A page whose core work failed (logged where it failed): 500, never an empty page that
/// looks like "nothing there".
pub fn internal_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// Policy for every response that does not set its own: nothing but this origin's own
/// script and style runs, nothing frames the pages, forms post only here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every response (pages, API and errors alike).
pub async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A page may ask for less (the action links' send none: their URL is a credential).
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if h.get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
    {
        // Pages hold the CSRF token and untrusted text: never from a shared cache.
        h.entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}
