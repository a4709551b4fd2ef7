//! Who is calling. The API takes a bearer token or the pages' session cookie; a request that
//! changes something with only the cookie must also carry the session's CSRF token in the
//! `X-CSRF-Token` header (the pages' script sends it), so another site cannot act through a
//! signed-in browser. Pages take the session cookie only (`Viewer`).

use super::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use baton::app::App;
use baton::auth::Actor;
use baton::login::SignedIn;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "baton_session";
/// The header that carries the CSRF token on API calls made with the cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// An authenticated API request's actor.
pub struct Caller(pub Actor);

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        // From another node of the cluster: who its signed assertion names, nothing else.
        if let Some(asserted) = parts.extensions.get::<crate::peers::trust::Asserted>() {
            return crate::peers::trust::caller(asserted, &parts.method, &parts.headers)
                .map(Caller);
        }
        if let Some(token) = bearer(&parts.headers) {
            return app
                .authenticate(token)
                .map(Caller)
                .ok_or(ApiError::Unauthorized);
        }
        let signed_in = session_of(parts, app).await.ok_or(ApiError::Unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD);
        if !safe && !csrf_ok(&parts.headers, &signed_in) {
            return Err(ApiError::Forbidden(format!(
                "a request made with the session cookie needs the `{CSRF_HEADER}` header"
            )));
        }
        Ok(Caller(signed_in.actor))
    }
}

/// A signed-in person on a page; without a live session the page redirects to `/login`.
pub struct Viewer(pub SignedIn);

/// Where a page without a session sends the browser.
pub struct ToLogin(String);

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let next =
            percent_encoding::utf8_percent_encode(&self.0, percent_encoding::NON_ALPHANUMERIC);
        Redirect::to(&format!("/login?next={next}")).into_response()
    }
}

impl FromRequestParts<App> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let asserted = parts.extensions.get::<crate::peers::trust::Asserted>();
        let found = match asserted {
            Some(asserted) => asserted.0.signed_in(),
            None => session_of(parts, app).await,
        };
        if let Some(s) = found {
            return Ok(Viewer(s));
        }
        if matches!(parts.method, Method::GET | Method::HEAD) {
            let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            return Err(ToLogin(here.to_string()).into_response());
        }
        // A form posted after the session ended: nothing is done, and the person is told.
        let told = [(header::LOCATION, "/login")];
        Err((StatusCode::UNAUTHORIZED, told, Html(SIGNED_OUT)).into_response())
    }
}

/// The answer to a form posted without a live session (a browser does not follow the
/// `Location` of a 401, so the page says where to go).
const SIGNED_OUT: &str = "<!doctype html><meta charset=\"utf-8\"><title>Signed out · baton</title>\
<p>Your session has ended, so nothing was changed. <a href=\"/login\">Sign in again</a>, \
then do it once more.</p>";

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .map(str::trim)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The live session the request's cookie names. A cluster keeps its sessions in the
/// database, so there the lookup runs off the async workers; one daemon's are in memory.
async fn session_of(parts: &Parts, app: &App) -> Option<SignedIn> {
    let id = cookie(&parts.headers, SESSION_COOKIE)?;
    if app.cluster().is_none() {
        return app.session(&id);
    }
    let app = app.clone();
    crate::blocking(move || app.session(&id))
        .await
        .ok()
        .flatten()
}

pub(crate) fn csrf_ok(headers: &HeaderMap, s: &SignedIn) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| same(t, &s.csrf))
}

/// Compares secrets in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
