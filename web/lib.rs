//! The HTTP surface over `App`: the JSON API, the SSE event stream, health and metrics. The
//! whole URL map is in `table`, from which both `router` and `routes` are made; handlers are
//! thin and never touch the filesystem. `server` serves the router with timeouts, a
//! connection limit and a shutdown deadline.

mod a2a;
mod api;
pub mod artifacts;
mod auth;
mod blocking;
mod canaries;
mod chat_links;
mod deliveries;
mod digest_cadence;
mod error;
mod exposition;
mod grants;
mod history;
mod json;
mod keys;
mod locks;
mod openapi;
mod ops;
mod pages;
mod passkeys;
mod peers;
mod push;

mod mattermost;
mod review;
mod reviewers;
mod search;
pub mod server;
mod slack;
mod sse;
mod upload;
mod withdraw;

pub use auth::Caller;
pub(crate) use blocking::{blocking, compute};
pub use error::ApiError;
pub use search::SearchQuery;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{on, MethodFilter};
use axum::Router;
use baton::app::App;

/// One method on one path of the router (a `GET` route answers `HEAD` too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// As axum writes it: `{name}` is one path segment.
    pub path: &'static str,
}

/// Routes being gathered: each is added to the router and to the list in the same call, so
/// the list (which the tests walk to prove every route asks for credentials) cannot miss one.
pub struct Routes {
    router: Router<App>,
    list: Vec<Route>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            list: Vec::new(),
        }
    }

    /// Routes `method` on `path` to `handler`.
    pub fn at<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Routes
    where
        H: Handler<T, App>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        self.router = self.router.route(path, on(filter, handler));
        self.list.push(Route { method, path });
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.list.extend(other.list);
        self
    }
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}

/// Every route. Everything but `/healthz`, `/metrics`, the OpenAPI document, the public keys
/// (`/api/v1/keys`, `/.well-known/jwks.json`), the A2A Agent Card, `/login` and the static
/// assets requires a bearer token or a session.
fn table() -> Routes {
    Routes::new()
        .at(Method::GET, "/healthz", ops::healthz)
        .at(Method::GET, "/metrics", ops::metrics)
        .at(Method::GET, "/api/v1/openapi.json", ops::openapi)
        .at(Method::GET, "/api/v1/handoffs", api::list)
        .at(Method::GET, "/api/v1/handoffs/{key}", api::get)
        .at(Method::GET, "/api/v1/handoffs/{key}/a2a", api::a2a)
        .at(Method::GET, "/api/v1/handoffs/{key}/changes", api::changes)
        .at(
            Method::POST,
            "/api/v1/handoffs/{key}/decision",
            // Room for the longest body the decision's schema allows (axum's default is 2 MiB).
            api::decide.layer(DefaultBodyLimit::max(
                baton::contract::request::decision::MAX_DECISION_BODY,
            )),
        )
        .at(
            Method::POST,
            "/api/v1/handoffs/{key}/withdraw",
            withdraw::withdraw,
        )
        .at(Method::POST, "/api/v1/handoffs/{key}/claim", review::claim)
        .at(
            Method::DELETE,
            "/api/v1/handoffs/{key}/claim",
            review::release,
        )
        .at(Method::POST, "/api/v1/decisions", review::decide_many)
        .at(Method::GET, "/api/v1/workspaces/{ws}/locks", locks::list)
        .at(Method::POST, "/api/v1/workspaces/{ws}/locks", locks::lock)
        .at(
            Method::DELETE,
            "/api/v1/workspaces/{ws}/locks",
            locks::unlock,
        )
        .at(
            Method::PUT,
            "/api/v1/workspaces/{ws}/inbox/{*path}",
            upload::inbox,
        )
        .at(
            Method::PUT,
            "/api/v1/workspaces/{ws}/checkpoints/{name}",
            upload::checkpoint,
        )
        .at(
            Method::PUT,
            "/api/v1/workspaces/{ws}/handoff",
            upload::handoff,
        )
        .at(
            Method::POST,
            "/api/v1/workspaces/{ws}/owner",
            locks::set_owner,
        )
        .at(Method::GET, "/api/v1/events", sse::events)
        .at(Method::GET, "/api/v1/events/history", history::list)
        .at(Method::GET, "/api/v1/search", search::search)
        .at(Method::GET, "/api/v1/keys", keys::list)
        .at(Method::GET, "/.well-known/jwks.json", keys::jwks)
        .at(Method::GET, "/api/v1/me/away", reviewers::presence)
        .at(Method::POST, "/api/v1/me/away", reviewers::set_away)
        .at(Method::GET, "/api/v1/reviewers", reviewers::loads)
        .at(Method::GET, "/api/v1/digest-cadences", digest_cadence::list)
        .at(
            Method::GET,
            "/api/v1/digest-cadences/{name}",
            digest_cadence::get,
        )
        .at(
            Method::PUT,
            "/api/v1/digest-cadences/{name}",
            digest_cadence::set,
        )
        .at(Method::GET, "/api/v1/grants", grants::list)
        .at(Method::DELETE, "/api/v1/grants/{id}", grants::revoke)
        .at(Method::POST, "/api/v1/grants/{id}/revoke", grants::revoke)
        .at(Method::GET, "/api/v1/push/key", push::key)
        .at(Method::GET, "/api/v1/me/push", push::list)
        .at(Method::POST, "/api/v1/me/push", push::subscribe)
        .at(Method::DELETE, "/api/v1/me/push", push::unsubscribe)
        .at(Method::GET, "/static/push/sw.js", push::service_worker)
        .at(Method::GET, "/static/push/page.js", push::page_script)
        .at(Method::POST, "/api/v1/push/act", push::act)
        .at(
            Method::POST,
            "/reviewers/passkeys/options",
            passkeys::register_options,
        )
        .at(Method::POST, "/reviewers/passkeys/new", passkeys::register)
        .at(
            Method::POST,
            "/reviewers/passkeys/confirm",
            passkeys::manage_challenge,
        )
        .at(Method::POST, "/handoffs/{key}/passkey", passkeys::challenge)
        .at(Method::GET, "/api/v1/deliveries", deliveries::list)
        .at(
            Method::POST,
            "/api/v1/deliveries/{id}/retry",
            deliveries::retry,
        )
        .at(
            Method::POST,
            "/chat/slack/interactions",
            slack::interactions,
        )
        .at(
            Method::POST,
            "/chat/mattermost/actions",
            mattermost::actions,
        )
        .at(
            Method::POST,
            "/chat/mattermost/dialogs",
            mattermost::dialogs,
        )
        .at(Method::GET, "/api/v1/chat/links", chat_links::list)
        .at(Method::POST, "/api/v1/chat/links", chat_links::link)
        .at(Method::DELETE, "/api/v1/chat/links", chat_links::unlink)
        .merge(pages::routes())
        .merge(artifacts::routes())
        .merge(a2a::routes())
}

/// The daemon's routes, path and method, as the router serves them.
pub fn routes() -> Vec<Route> {
    table().list
}

/// The daemon's router.
pub fn router(app: App) -> Router {
    table()
        .router
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            peers::to_holder,
        ))
        .layer(axum::middleware::map_response(pages::security_headers))
        .layer(axum::middleware::from_fn(server::close_after_unread_body))
        // gzip or br when the client asks; the default rule leaves event streams (SSE),
        // images and bodies of a few bytes as they are.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(app)
}
