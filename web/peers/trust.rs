//! Nodes prove who they are to each other, and a caller's credential never leaves the node it
//! was presented to.
//!
//! A request one node sends another (a forwarded request, a part of a merged answer, a bulk
//! decision's share) carries no `Authorization` and no `Cookie`: it carries this node's
//! assertion of who is acting (the person or agent its own credential proved, checked here),
//! in `x-baton-peer`, and an HMAC-SHA256 under the cluster's key (`baton::cluster::trust`) in
//! `x-baton-peer-signature`. The signature covers the method, the path and query, and the
//! assertion, which names: the sending node; the node, run (instance) and, for a request about
//! one workspace, lease (tag, epoch) it is meant for; the time; a nonce; the body's sha256;
//! and who is acting.
//!
//! The receiving node refuses (401) a request whose signature does not hold, whose time is
//! more than a minute from its own, whose nonce it has seen, or whose body is not the one
//! signed; and (403) one meant for another node or another run of itself. It answers one
//! meant for a lease it no longer holds under that epoch with a 503 (try again). It trusts
//! the assertion only then, and signs its answer: the status and every header it has then
//! (`HEADERS`), bound to the request's nonce and to its own node and run; and the body itself,
//! frame by frame with the SHA-256 of the whole at its end (`super::answer`). The sending node
//! relays (or merges) only an answer so signed by the node it addressed, with only the headers
//! signed and only bytes whose signature held: anything else is a 502. An answer signed as nodes did
//! before bodies were signed (`baton-peer-answer-v1`: an older node) is refused the same way,
//! with a message to upgrade every node.

use super::FORWARDED_BY;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton::app::App;
use baton::auth::Actor;
use baton::cluster::trust::{Trust, WINDOW};
use baton::cluster::{Cluster, Peer};
use baton::login::SignedIn;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The sending node's assertion (hex of its JSON, `Claims`).
pub const PEER: HeaderName = HeaderName::from_static("x-baton-peer");
/// The signature of a request from another node.
pub const SIGNATURE: HeaderName = HeaderName::from_static("x-baton-peer-signature");
/// The signature of an answer to one.
pub const ANSWER: HeaderName = HeaderName::from_static("x-baton-peer-answer");

/// Who is acting, as the node the caller presented its credential to found: the token's
/// actor, the session's, or both (a request may carry a token and a cookie, and the API takes
/// the token where the pages take the session).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Who>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// A one-time action (a mail link's, a push notification's) as the sending node read and
    /// checked its token with the links' shared key: its link and the token's SHA-256. The
    /// token never leaves the node it was presented to (not in the path, not in the body):
    /// the receiving node decides from this, as from a token it read itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<baton::app::CheckedLink>,
    /// A mail link's confirm form whose double-submit cookie (`baton_act`) the sending node
    /// checked against the form's field, as for a form posted to it: the cookie and the
    /// field stay there too. A forwarded form without it decides nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub form_checked: bool,
}

/// An actor, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Who {
    Reviewer {
        name: String,
        roles: Vec<String>,
    },
    Agent {
        name: String,
        workspaces: Vec<String>,
    },
}

/// A signed-in person: their actor, name and the session's CSRF token (which the receiving
/// node checks a form's or an API call's against, as for its own sessions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub who: Who,
    pub name: String,
    pub csrf: String,
}

impl From<&Actor> for Who {
    fn from(actor: &Actor) -> Who {
        match actor.clone() {
            Actor::Reviewer { name, roles } => Who::Reviewer { name, roles },
            Actor::Agent { name, workspaces } => Who::Agent { name, workspaces },
        }
    }
}

impl From<&Who> for Actor {
    fn from(who: &Who) -> Actor {
        match who.clone() {
            Who::Reviewer { name, roles } => Actor::Reviewer { name, roles },
            Who::Agent { name, workspaces } => Actor::Agent { name, workspaces },
        }
    }
}

impl Acting {
    fn is_empty(&self) -> bool {
        self.token.is_none() && self.session.is_none()
    }

    /// A signed-in person, as their session proves them on this node.
    pub fn of_session(s: &SignedIn) -> Acting {
        Acting {
            session: Some(Session {
                who: Who::from(&s.actor),
                name: s.name.clone(),
                csrf: s.csrf.clone(),
            }),
            ..Acting::default()
        }
    }

    /// The session, as this node's own would be.
    pub fn signed_in(&self) -> Option<SignedIn> {
        self.session.as_ref().map(|s| SignedIn {
            actor: Actor::from(&s.who),
            name: s.name.clone(),
            csrf: s.csrf.clone(),
        })
    }
}

/// A request from another node whose signature held: who it says is acting. Put in the
/// request's extensions by `from_peer`, and read by `crate::auth` in place of credentials.
#[derive(Debug, Clone)]
pub struct Asserted(pub Acting);

/// What a signed request says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    from: String,
    to: String,
    instance: String,
    /// The lease (tag, epoch) the request is sent by, for one about a workspace.
    #[serde(default)]
    lease: Option<(String, i64)>,
    /// Unix seconds on the nodes' clock.
    at: u64,
    nonce: String,
    /// The sha256 of the body, hex.
    body: String,
    acting: Acting,
}

/// Who the request's own credential proves is acting, checked on this node: its bearer token,
/// its session cookie, or both. None when neither holds.
pub async fn acting_of(app: &App, headers: &HeaderMap) -> Option<Acting> {
    let mut acting = Acting::default();
    if let Some(token) = crate::auth::bearer(headers) {
        acting.token = Some(Who::from(&app.authenticate(token)?));
    }
    if let Some(id) = crate::auth::cookie(headers, crate::auth::SESSION_COOKIE) {
        let app = app.clone();
        let found = crate::blocking(move || app.session(&id))
            .await
            .ok()
            .flatten();
        acting.session = found.map(|s| Session {
            who: Who::from(&s.actor),
            name: s.name,
            csrf: s.csrf,
        });
    }
    (!acting.is_empty()).then_some(acting)
}

/// What a request's signature covers.
fn request_parts<'a>(method: &'a str, path: &'a str, claims: &'a str) -> [&'a [u8]; 4] {
    [
        b"baton-peer-request-v1",
        method.as_bytes(),
        path.as_bytes(),
        claims.as_bytes(),
    ]
}

/// What an older node's answer signature covered (`v1`): its status, the request it answers
/// (by nonce), and the node and run that answered; not its body. Checked only to tell the
/// operator why such an answer is refused.
fn answer_parts_v1<'a>(
    nonce: &'a str,
    status: &'a str,
    node: &'a str,
    instance: &'a str,
) -> [&'a [u8]; 5] {
    [
        b"baton-peer-answer-v1",
        nonce.as_bytes(),
        status.as_bytes(),
        node.as_bytes(),
        instance.as_bytes(),
    ]
}

/// What an answer's head signature covers: its status, its headers (`HEADERS`, by digest),
/// whether a signed body follows, the request it answers (by nonce), and the node and run that
/// answered. The body is signed frame by frame (`super::answer`).
fn answer_parts<'a>(
    nonce: &'a str,
    status: &'a str,
    node: &'a str,
    instance: &'a str,
    headers: &'a [u8],
    body: &'a str,
) -> [&'a [u8]; 7] {
    [
        b"baton-peer-answer-v2",
        nonce.as_bytes(),
        status.as_bytes(),
        node.as_bytes(),
        instance.as_bytes(),
        headers,
        body.as_bytes(),
    ]
}

/// The body's length as the answering node sent it (its framed body's differs), restored as
/// `Content-Length` by the asking node.
pub const LENGTH: HeaderName = HeaderName::from_static("x-baton-peer-length");

/// The names of the headers an answer's head signature covers, comma-separated: every header
/// the answer has when it is signed. The asking node relays those and no other, so what is
/// added after the signature (by the answering node's outer layers: the security headers, and
/// by anything on the path) is dropped, and its own layers add their own.
pub const HEADERS: HeaderName = HeaderName::from_static("x-baton-peer-headers");

/// Headers never signed: the signature's own, and those of one connection (the wire's
/// framing, which hyper sets for the framed body).
fn unsigned(name: &HeaderName) -> bool {
    [
        &ANSWER,
        &HEADERS,
        &header::CONTENT_LENGTH,
        &header::TRANSFER_ENCODING,
        &header::CONNECTION,
        &header::TRAILER,
        &header::UPGRADE,
        &header::TE,
    ]
    .contains(&name)
        || name.as_str() == "keep-alive"
}

/// The names `headers` are signed under (sorted, each once).
fn signed_names(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut names: Vec<HeaderName> = headers.keys().filter(|n| !unsigned(n)).cloned().collect();
    names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    names
}

/// The names listed in an answer's `HEADERS`, or None when one is not a header name.
fn listed_names(value: &str) -> Option<Vec<HeaderName>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .collect()
}

/// The SHA-256 of the headers of `names`: each name with every value it has, in order, each
/// with its length (values trimmed of the spaces HTTP lets the wire add or drop around them).
fn headers_digest(names: &[HeaderName], headers: &HeaderMap) -> [u8; 32] {
    let mut sha = Sha256::new();
    sha.update((names.len() as u64).to_be_bytes());
    for name in names {
        sha.update((name.as_str().len() as u64).to_be_bytes());
        sha.update(name.as_str().as_bytes());
        let values: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes().trim_ascii())
            .collect();
        sha.update((values.len() as u64).to_be_bytes());
        for value in values {
            sha.update((value.len() as u64).to_be_bytes());
            sha.update(value);
        }
    }
    sha.finalize().into()
}

/// Whether an answer of `status` to a request of `method` has a body at all (HTTP gives none
/// to a HEAD, a 204 or a 304): then nothing is framed, and nothing is relayed.
fn bodiless(method: &Method, status: StatusCode) -> bool {
    *method == Method::HEAD
        || status.is_informational()
        || matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
}

fn digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Signs a request to `peer` (`headers` are the ones it goes with: without credentials, see
/// `super::outgoing`): the headers to add. Returns the nonce, which its answer's signature
/// must name.
pub fn sign_request(
    cluster: &Cluster,
    peer: &Peer,
    method: &Method,
    path_and_query: &str,
    body: &[u8],
    acting: &Acting,
    headers: &mut HeaderMap,
) -> String {
    let nonce = Trust::nonce();
    let claims = Claims {
        from: cluster.node.clone(),
        to: peer.node.clone(),
        instance: peer.instance.clone(),
        lease: peer.lease.clone(),
        at: baton::clock::now_s(),
        nonce: nonce.clone(),
        body: digest(body),
        acting: acting.clone(),
    };
    let claims = hex::encode(serde_json::to_vec(&claims).unwrap_or_default());
    let signature = cluster
        .trust
        .sign(&request_parts(method.as_str(), path_and_query, &claims));
    if let (Ok(c), Ok(s)) = (
        HeaderValue::from_str(&claims),
        HeaderValue::from_str(&signature),
    ) {
        headers.insert(PEER, c);
        headers.insert(SIGNATURE, s);
    }
    nonce
}

/// Whether `answer` (to a request of `method`) is signed by `peer` (the node and run the
/// request was sent to) for the request of `nonce`: its body, checked frame by frame as it
/// is read (an error in place of the first bytes that do not hold, `super::answer`); why not
/// if its head does not hold.
pub fn check_answer<B>(
    cluster: &Cluster,
    peer: &Peer,
    nonce: &str,
    method: &Method,
    answer: axum::http::Response<B>,
) -> Result<Response, String>
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    let (mut parts, body) = answer.into_parts();
    let status = parts.status;
    let signature = parts
        .headers
        .remove(ANSWER)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .unwrap_or_default();
    let bodiless = bodiless(method, status);
    let marker = if bodiless { "none" } else { "framed" };
    let names = parts
        .headers
        .remove(HEADERS)
        .and_then(|v| v.to_str().ok().and_then(listed_names))
        .unwrap_or_default();
    let covered = headers_digest(&names, &parts.headers);
    let signed = answer_parts(
        nonce,
        status.as_str(),
        &peer.node,
        &peer.instance,
        &covered,
        marker,
    );
    if !cluster.trust.verify(&signed, &signature) {
        let v1 = answer_parts_v1(nonce, status.as_str(), &peer.node, &peer.instance);
        return Err(match cluster.trust.verify(&v1, &signature) {
            true => format!(
                "node {} runs an older baton, whose answers do not sign their body, so what it answers cannot be told from an answer altered on the way: not relayed. Upgrade every node of the cluster to the same version",
                peer.node
            ),
            false => format!(
                "what answers at its address (status {status}) is not that node, or its answer was altered on the way: its head is not signed with the cluster's key"
            ),
        });
    }
    // Only what was signed goes on; the wire's length is the frames', the answer's own is
    // `LENGTH` (signed).
    let mut relayed = HeaderMap::new();
    for name in &names {
        for value in parts.headers.get_all(name) {
            relayed.append(name.clone(), value.clone());
        }
    }
    if let Some(length) = relayed.remove(LENGTH) {
        relayed.insert(header::CONTENT_LENGTH, length);
    }
    parts.headers = relayed;
    let body = match bodiless {
        true => Body::empty(),
        false => {
            let binding = super::answer::Binding {
                nonce: nonce.to_string(),
                node: peer.node.clone(),
                instance: peer.instance.clone(),
            };
            super::answer::unseal(cluster.trust.clone(), binding, body)
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// The largest body a node takes from another: its own upload limit, and room for a bulk
/// decision's JSON.
pub fn body_limit(app: &App) -> usize {
    app.config().max_upload_bytes.max(16 << 20) + 1
}

/// A request marked as coming from another node: served only when its signature holds and it
/// is meant for this run of this node, now; then as the asserted actor, with the answer signed.
pub async fn from_peer(app: &App, request: Request, next: Next) -> Response {
    let Some(cluster) = app.cluster() else {
        return refused(
            StatusCode::UNAUTHORIZED,
            "a request marked as forwarded by a node, sent to a daemon that is in no cluster",
        );
    };
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, body_limit(app)).await else {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request's body is too large",
        );
    };
    let claims = match verify(cluster, &parts, &bytes) {
        Ok(claims) => claims,
        Err((status, why)) => {
            let path = redacted(parts.uri.path());
            tracing::warn!(%why, %path, "refused a request claiming to come from another node");
            return refused(status, &why);
        }
    };
    let nonce = claims.nonce.clone();
    let method = parts.method.clone();
    let stale_lease = claims
        .lease
        .as_ref()
        .is_some_and(|(tag, epoch)| cluster.leases.epoch(tag) != Some(*epoch));
    let response = if stale_lease {
        let why = "this node no longer serves it under the lease it was sent for; try again";
        let mut r = refused(StatusCode::SERVICE_UNAVAILABLE, why);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        // Credentials never come from another node: only its signed assertion.
        parts.headers.remove(header::AUTHORIZATION);
        parts.headers.remove(header::COOKIE);
        parts.headers.remove(PEER);
        parts.headers.remove(SIGNATURE);
        if let Ok(v) = HeaderValue::from_str(&claims.from) {
            parts.headers.insert(FORWARDED_BY, v);
        }
        parts.extensions.insert(Asserted(claims.acting));
        next.run(Request::from_parts(parts, Body::from(bytes)))
            .await
    };
    sign_answer(cluster, &nonce, &method, response)
}

fn sign_answer(cluster: &Cluster, nonce: &str, method: &Method, response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bodiless = bodiless(method, parts.status);
    // The framed body is longer than the answer's (and a HEAD's has none): the answer's own
    // length goes as `LENGTH`, signed.
    if let Some(length) = parts.headers.remove(header::CONTENT_LENGTH) {
        parts.headers.insert(LENGTH, length);
    }
    let body = match bodiless {
        true => body,
        false => {
            let binding = super::answer::Binding {
                nonce: nonce.to_string(),
                node: cluster.node.clone(),
                instance: cluster.instance.clone(),
            };
            super::answer::seal(cluster.trust.clone(), binding, body)
        }
    };
    let names = signed_names(&parts.headers);
    let covered = headers_digest(&names, &parts.headers);
    let listed = names.iter().map(HeaderName::as_str).collect::<Vec<_>>();
    if let Ok(v) = HeaderValue::from_str(&listed.join(",")) {
        parts.headers.insert(HEADERS, v);
    }
    let signature = cluster.trust.sign(&answer_parts(
        nonce,
        parts.status.as_str(),
        &cluster.node,
        &cluster.instance,
        &covered,
        if bodiless { "none" } else { "framed" },
    ));
    if let Ok(v) = HeaderValue::from_str(&signature) {
        parts.headers.insert(ANSWER, v);
    }
    Response::from_parts(parts, body)
}

/// The claims of a request from another node, if its signature holds and it is meant for
/// this run of this node, now; else the status to refuse it with and why.
fn verify(
    cluster: &Cluster,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Claims, (StatusCode, String)> {
    let unauthorized = |why: &str| (StatusCode::UNAUTHORIZED, why.to_string());
    let header_of = |name: &HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (Some(claims_hex), Some(signature)) = (header_of(&PEER), header_of(&SIGNATURE)) else {
        return Err(unauthorized(
            "a request marked as forwarded by a node must be signed by it (x-baton-peer, x-baton-peer-signature)",
        ));
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let signed = request_parts(parts.method.as_str(), path, &claims_hex);
    if !cluster.trust.verify(&signed, &signature) {
        return Err(unauthorized(
            "the request's signature does not hold: not signed with this cluster's key",
        ));
    }
    let claims: Claims = hex::decode(&claims_hex)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| unauthorized("the request's assertion cannot be read"))?;
    if claims.to != cluster.node || claims.instance != cluster.instance {
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "the request was meant for node {} (run {}), not this one ({}, run {})",
                claims.to, claims.instance, cluster.node, cluster.instance
            ),
        ));
    }
    let now = baton::clock::now_s();
    if now.abs_diff(claims.at) > WINDOW.as_secs() {
        return Err(unauthorized(
            "the request was signed more than a minute from this node's time (stale, or the nodes' clocks differ)",
        ));
    }
    if digest(body) != claims.body {
        return Err(unauthorized("the request's body is not the one signed"));
    }
    if !cluster.trust.first_use(&claims.nonce) {
        return Err(unauthorized("the request was seen already (a replay)"));
    }
    Ok(claims)
}

/// A path fit for a log: a one-time link's token (`/act/{token}`) is a credential, and is
/// cut off.
fn redacted(path: &str) -> &str {
    match path.find("/act/") {
        Some(at) => &path[..at + "/act/".len()],
        None => path,
    }
}

fn refused(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

/// The actor of an API request a node forwarded: its token's, else its session's (with the
/// session's CSRF token checked as for a cookie here).
pub fn caller(
    asserted: &Asserted,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Actor, crate::ApiError> {
    if let Some(who) = &asserted.0.token {
        return Ok(Actor::from(who));
    }
    let signed_in = asserted
        .0
        .signed_in()
        .ok_or(crate::ApiError::Unauthorized)?;
    let safe = matches!(*method, Method::GET | Method::HEAD);
    if !safe && !crate::auth::csrf_ok(headers, &signed_in) {
        return Err(crate::ApiError::Forbidden(format!(
            "a request made with the session cookie needs the `{}` header",
            crate::auth::CSRF_HEADER
        )));
    }
    Ok(signed_in.actor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_path_names_no_link_token() {
        assert_eq!(redacted("/act/l1.payload.tag"), "/act/");
        assert_eq!(redacted("/api/v1/handoffs/k"), "/api/v1/handoffs/k");
    }

    #[test]
    fn an_actor_travels_as_it_was() {
        let actors = [
            Actor::Reviewer {
                name: "rita".into(),
                roles: vec!["reviewer".into()],
            },
            Actor::Agent {
                name: "bot".into(),
                workspaces: vec!["team-*".into()],
            },
        ];
        for actor in actors {
            let who = Who::from(&actor);
            let json = serde_json::to_string(&who).unwrap();
            let back: Who = serde_json::from_str(&json).unwrap();
            assert_eq!(Actor::from(&back), actor);
        }
    }
}
