//! `GET|POST /act/{token}`: the one-time action links of a reviewer's mail. No session: the
//! token is the credential (`App::open_link`, `App::use_link`). A GET only shows what the link
//! would decide (mail scanners and link previews fetch links); the confirm form's POST, with
//! a double-submit CSRF token as the sign-in form has, decides. The pages send no referrer,
//! so the token in the URL goes nowhere else.
//!
//! In a cluster a link is taken by the node serving its handoff's workspace, so it works
//! whichever node a load balancer sends it to. Another node reads the token with the links'
//! shared key and forwards the GET and the POST there (signed, as every request between
//! nodes), carrying the link it checked and the token's SHA-256 (`Acting::link`), never the
//! token: it is in neither the path nor the body. For the POST that node checks the form's
//! cookie itself and says so (`Acting::form_checked`); only the comment goes on. The holder
//! decides from that link as from a token it read (used mark, reviewer, the handoff's state,
//! `Cx::decide`), and refuses a forwarded request without one (403).

use super::forms::{csrf_refused, Form, CSRF_FIELD};
use super::handoff::urlencode;
use super::login::ClientAddr;
use super::render;
use crate::auth::{cookie, same};
use crate::peers::trust::{Acting, Asserted};
use crate::peers::TokenHolder;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use baton::app::{App, CheckedLink, DecideError, Decided, LinkError, LinkTarget};
use baton::login::links::Channel;
use baton::login::random_token;

const LINK_COOKIE: &str = "baton_act";

#[derive(Template)]
#[template(path = "action_link.html")]
struct LinkPage {
    heading: String,
    refusal: Option<String>,
    done: Option<String>,
    target: Option<LinkTarget>,
    token: String,
    csrf: String,
    /// The handoff's page (or the queue when the link names none that can be trusted).
    page: String,
}

impl LinkPage {
    fn new(heading: &str, page: String) -> LinkPage {
        LinkPage {
            heading: heading.to_string(),
            refusal: None,
            done: None,
            target: None,
            token: String::new(),
            csrf: String::new(),
            page,
        }
    }
}

fn handoff_page(key: &str) -> String {
    format!("/handoffs/{}", urlencode(key))
}

/// A page of these routes: never cached (`render`'s pages are `no-store`), never indexed,
/// and no referrer, since the token is in the URL.
fn answer(status: StatusCode, page: &LinkPage, cookie: Option<String>) -> Response {
    let mut response = (status, render(page)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    response
}

fn refused(e: LinkError, page: String) -> Response {
    let status = match &e {
        LinkError::Invalid(_) | LinkError::UnknownReviewer(_) | LinkError::NeedsPasskey { .. } => {
            StatusCode::FORBIDDEN
        }
        LinkError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        LinkError::Expired | LinkError::Used => StatusCode::GONE,
        LinkError::Gone | LinkError::Refused(DecideError::NotFound(_)) => StatusCode::NOT_FOUND,
        LinkError::Io(_) | LinkError::Refused(DecideError::Io(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        LinkError::Refused(DecideError::Forbidden(_)) => StatusCode::FORBIDDEN,
        LinkError::Refused(DecideError::Unprocessable(_)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CONFLICT,
    };
    let wait = match &e {
        LinkError::Throttled(wait) => Some(wait.as_secs().max(1)),
        _ => None,
    };
    let mut p = LinkPage::new("This link decides nothing", page);
    p.refusal = Some(e.to_string());
    let mut response = answer(status, &p, None);
    if let Some(wait) = wait {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, wait.into());
    }
    response
}

/// The key a token names, for the page link of a refusal; only from a token this daemon
/// made (a forged one's would be the forger's words).
fn key_of(app: &App, token: &str) -> String {
    app.action_link_key()
        .ok()
        .and_then(|k| k.read(token).ok())
        .map_or("/".to_string(), |l| handoff_page(&l.key))
}

fn cookie_of(app: &App, value: &str) -> String {
    let secure = match app.config().public_url.starts_with("https://") {
        true => "; Secure",
        false => "",
    };
    format!("{LINK_COOKIE}={value}; Path=/act; HttpOnly; SameSite=Strict{secure}")
}

/// Why a link cannot be taken now (503; 502 when its holder's answer did not come).
fn unavailable(status: StatusCode, message: String, retry_s: u64, page: String) -> Response {
    let mut p = LinkPage::new("This link cannot be taken right now", page);
    p.refusal = Some(message);
    let mut response = answer(status, &p, None);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, retry_s.max(1).into());
    response
}

/// Where a link forwarded to the node serving its handoff goes: no token in it (see
/// `Acting::link`), and one route for the confirm page's GET and the form's POST.
const FORWARDED_PATH: &str = "/act/checked";

/// The answer of the node serving the link's handoff, when another node does: `None` when
/// this node answers the request itself. What goes there is the link as checked here
/// (`Acting::link`) and, for the form, that its cookie was checked here and its comment;
/// never the token nor the cookie.
async fn elsewhere(
    app: &App,
    (token, addr): (&str, Option<std::net::IpAddr>),
    (method, headers): (Method, &HeaderMap),
    body: Bytes,
    form_checked: bool,
) -> Option<Response> {
    let (peer, link) =
        match crate::peers::token_holder(app, token, Channel::Mail, addr, false).await {
            TokenHolder::Here => return None,
            TokenHolder::Peer(peer, link) => (peer, link),
            TokenHolder::Unavailable { message, retry_s } => {
                let page = handoff_page_of(app, token).await;
                let status = StatusCode::SERVICE_UNAVAILABLE;
                return Some(unavailable(status, message, retry_s, page));
            }
        };
    let page = handoff_page(&link.link.key);
    let acting = Acting {
        link: Some(*link),
        form_checked,
        ..Acting::default()
    };
    let patience = Some(crate::peers::ANSWER_TIMEOUT);
    let relayed = crate::peers::relay(
        app,
        &peer,
        method,
        FORWARDED_PATH,
        headers,
        body,
        &acting,
        patience,
    )
    .await;
    Some(relayed.unwrap_or_else(|why| {
        let message = crate::peers::token_unreachable(&peer, &why);
        unavailable(StatusCode::BAD_GATEWAY, message, 2, page)
    }))
}

/// `key_of` off the async workers (the key is a document).
async fn handoff_page_of(app: &App, token: &str) -> String {
    let (app, token) = (app.clone(), token.to_string());
    crate::blocking(move || key_of(&app, &token))
        .await
        .unwrap_or_else(|_| "/".to_string())
}

/// The link another node checked (`Acting::link`), on a request it forwarded: refused (403)
/// when it sent none, or no form check (`form_checked`) on a form: a forwarded request is
/// never taken on its path's word.
fn forwarded_link(acting: &Acting, form: bool) -> Result<CheckedLink, Box<Response>> {
    if form && !acting.form_checked {
        return Err(Box::new(csrf_refused()));
    }
    acting.link.clone().ok_or_else(|| {
        let e = LinkError::Invalid(baton::login::links::TokenError::Invalid);
        Box::new(refused(e, "/".to_string()))
    })
}

/// `GET /act/{token}`: what the link would decide, and the button that decides it; on the
/// node serving its handoff (forwarded there from any other, as the link checked there).
pub async fn confirm(
    State(app): State<App>,
    ClientAddr(addr): ClientAddr,
    Path(token): Path<String>,
    asserted: Option<Extension<Asserted>>,
    headers: HeaderMap,
) -> Response {
    let checked = match asserted {
        Some(Extension(Asserted(acting))) => match forwarded_link(&acting, false) {
            Ok(link) => Some(link),
            Err(refusal) => return *refusal,
        },
        None => None,
    };
    if checked.is_none() {
        let to = (Method::GET, &headers);
        if let Some(answer) = elsewhere(&app, (&token, addr), to, Bytes::new(), false).await {
            return answer;
        }
    }
    let opened = crate::blocking({
        let (app, token, checked) = (app.clone(), token.clone(), checked.clone());
        move || match checked {
            Some(c) => (app.open_checked_link(&c), handoff_page(&c.link.key)),
            None => (app.open_link(&token, addr), key_of(&app, &token)),
        }
    })
    .await;
    let Ok((opened, page)) = opened else {
        return super::internal_error();
    };
    let target = match opened {
        Ok(t) => t,
        Err(e) => return refused(e, page),
    };
    let csrf = random_token();
    let mut p = LinkPage::new(
        &format!("{} this handoff?", target.link.outcome.label()),
        page,
    );
    p.target = Some(target);
    // A page for another node's reviewer has no token: its form posts to the page's own
    // address, the link there.
    if checked.is_none() {
        p.token = token;
    }
    p.csrf = csrf.clone();
    answer(StatusCode::OK, &p, Some(cookie_of(&app, &csrf)))
}

/// `POST /act/{token}`: decides, once; on the node serving its handoff (forwarded there
/// from any other, once that node checked the form's cookie, with the link it checked and
/// the comment).
pub async fn decide(
    State(app): State<App>,
    ClientAddr(addr): ClientAddr,
    Path(token): Path<String>,
    asserted: Option<Extension<Asserted>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let comment = form.text("comment");
    let checked = match asserted {
        Some(Extension(Asserted(acting))) => match forwarded_link(&acting, true) {
            Ok(link) => Some(link),
            Err(refusal) => return *refusal,
        },
        None => None,
    };
    if checked.is_none() {
        let expected = cookie(&headers, LINK_COOKIE);
        // An empty cookie matches nothing: an empty field must not pass for a token.
        let sent = form.get(CSRF_FIELD);
        let ok = matches!((expected.as_deref(), sent), (Some(e), Some(s)) if !e.is_empty() && same(e, s));
        if !ok {
            return csrf_refused();
        }
        // Only the comment goes on: the field and the cookie were checked here.
        let body = Bytes::from(match &comment {
            Some(c) => format!("comment={}", urlencode(c)),
            None => String::new(),
        });
        let to = (Method::POST, &headers);
        if let Some(answer) = elsewhere(&app, (&token, addr), to, body, true).await {
            return answer;
        }
    }
    let used = crate::blocking({
        let app = app.clone();
        move || match checked {
            Some(c) => (app.use_checked_link(&c, comment), handoff_page(&c.link.key)),
            None => {
                let page = key_of(&app, &token);
                (app.use_link(&token, comment, addr), page)
            }
        }
    })
    .await;
    let Ok((used, page)) = used else {
        return super::internal_error();
    };
    let done = match used {
        Ok(Decided::Closed(d)) => format!(
            "Recorded: {} by {}. decision.json is in the workspace for the agent, signed.",
            d.outcome.as_str(),
            d.by
        ),
        Ok(Decided::Pending(_)) => {
            "Your approval is recorded; the handoff waits for the other approvals or sign-offs it needs."
                .to_string()
        }
        Err(e) => return refused(e, page),
    };
    let mut p = LinkPage::new("Decision recorded", page);
    p.done = Some(done);
    let clear = cookie_of(&app, "").replace("; Path", "; Max-Age=0; Path");
    answer(StatusCode::OK, &p, Some(clear))
}
