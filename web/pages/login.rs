//! `GET|POST /login`, `POST /logout`. Sign-in forms carry a token that must match a cookie
//! set with the form (double submit), so another site cannot sign a browser in to its own
//! account; the session id is new at every sign-in and ends server-side at sign-out.

use super::forms::{csrf_refused, Form, CSRF_FIELD};
use super::render;
use crate::auth::{cookie, same, Viewer, SESSION_COOKIE};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use baton::app::App;
use baton::login::{random_token, LoginError};
use serde::Deserialize;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

const LOGIN_COOKIE: &str = "baton_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    next: String,
    name: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// Where to go after signing in: a path of this site only, never another host. Browsers
/// drop tabs and newlines from a URL and read `\` as `/`, so `/\t/evil.com` would be
/// `//evil.com`: any control character or backslash sends to `/`.
fn local(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.into()
        }
        _ => "/".into(),
    }
}

fn cookie_attrs(app: &App) -> &'static str {
    if app.config().public_url.starts_with("https://") {
        "; Path=/; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Lax"
    }
}

fn page(
    app: &App,
    status: StatusCode,
    name: &str,
    next: String,
    error: Option<String>,
) -> Response {
    let token = random_token();
    let form = LoginPage {
        csrf: token.clone(),
        next,
        name: name.to_string(),
        error,
    };
    let set = format!("{LOGIN_COOKIE}={token}{}", cookie_attrs(app));
    (status, [(header::SET_COOKIE, set)], render(&form)).into_response()
}

pub async fn form(State(app): State<App>, Query(q): Query<Next>) -> Response {
    page(&app, StatusCode::OK, "", local(q.next.as_deref()), None)
}

/// The client's address, when the server knows it (for the sign-in and action-link throttle).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(ClientAddr(addr.map(|c| c.0.ip())))
    }
}

pub async fn submit(
    State(app): State<App>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let next = local(form.get("next"));
    let expected = cookie(&headers, LOGIN_COOKIE);
    let sent = form.get(CSRF_FIELD);
    // An empty cookie matches nothing: an empty field must not pass for a token.
    if !matches!((expected.as_deref(), sent), (Some(e), Some(s)) if !e.is_empty() && same(e, s)) {
        let error = "The sign-in form expired; please sign in again.".to_string();
        return page(&app, StatusCode::FORBIDDEN, "", next, Some(error));
    }
    let name = form.get("name").unwrap_or_default().trim().to_string();
    let password = form.get("password").unwrap_or_default().to_string();
    let who = name.clone();
    let signed = crate::blocking({
        let app = app.clone();
        move || app.sign_in(&who, &password, addr)
    })
    .await;
    match signed {
        Ok(Ok((id, _))) => {
            let set = format!("{SESSION_COOKIE}={id}{}", cookie_attrs(&app));
            let clear = format!("{LOGIN_COOKIE}=; Max-Age=0{}", cookie_attrs(&app));
            let mut response = Redirect::to(&next).into_response();
            let h = response.headers_mut();
            h.append(header::SET_COOKIE, set.parse().expect("cookie is ASCII"));
            h.append(header::SET_COOKIE, clear.parse().expect("cookie is ASCII"));
            response
        }
        Ok(Err(e @ LoginError::Throttled(wait))) => {
            let mut r = page(
                &app,
                StatusCode::TOO_MANY_REQUESTS,
                &name,
                next,
                Some(e.to_string()),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
            r
        }
        Ok(Err(e @ LoginError::Unavailable(_))) => page(
            &app,
            StatusCode::SERVICE_UNAVAILABLE,
            &name,
            next,
            Some(e.to_string()),
        ),
        Ok(Err(e)) => page(
            &app,
            StatusCode::UNAUTHORIZED,
            &name,
            next,
            Some(e.to_string()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "sign-in task failed");
            super::internal_error()
        }
    }
}

pub async fn logout(
    State(app): State<App>,
    Viewer(s): Viewer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !Form::parse(&body).csrf_ok(&s) {
        return csrf_refused();
    }
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let ended = crate::blocking({
            let app = app.clone();
            move || app.sign_out(&id)
        })
        .await;
        if ended.is_err() {
            return super::internal_error();
        }
    }
    let clear = format!("{SESSION_COOKIE}=; Max-Age=0{}", cookie_attrs(&app));
    ([(header::SET_COOKIE, clear)], Redirect::to("/login")).into_response()
}
