//! Chat accounts linked to people, over the API (admins only): `GET /api/v1/chat/links`
//! (the configuration's links and the admins'), `POST` with `{"chat_user", "user"}` to link,
//! `DELETE` with `{"chat_user"}` to unlink. Thin over `App::chat_links` / `chat_link` /
//! `chat_unlink`, as the `/reviewers/chat` page is. A link made here decides once the person it
//! names, signed in, confirms it from the Slack account's direct message.

use super::api::json_body;
use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use baton::app::{App, ChatLinkError, ChatLinkView};
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    chat_user: String,
    user: String,
    /// The Slack `[[chat]]` entry the account belongs to; needed when there are several.
    #[serde(default)]
    chat: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UnlinkBody {
    chat_user: String,
}

/// `GET /api/v1/chat/links`.
pub async fn list(
    State(app): State<App>,
    Caller(actor): Caller,
) -> Result<Json<Vec<ChatLinkView>>, ApiError> {
    let links = blocking(move || app.chat_links(&actor)).await?;
    Ok(Json(links.map_err(api_error)?))
}

/// `POST /api/v1/chat/links` with `{"chat_user", "user"}`.
pub async fn link(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ChatLinkView>, ApiError> {
    let body: LinkBody = json_body(&headers, &body)?;
    let linked =
        blocking(move || app.chat_link(&actor, body.chat.as_deref(), &body.chat_user, &body.user))
            .await?;
    Ok(Json(linked.map_err(api_error)?))
}

/// `DELETE /api/v1/chat/links` with `{"chat_user"}`.
pub async fn unlink(
    State(app): State<App>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: UnlinkBody = json_body(&headers, &body)?;
    let chat_user = body.chat_user.clone();
    blocking(move || app.chat_unlink(&actor, &body.chat_user))
        .await?
        .map_err(api_error)?;
    Ok(Json(json!({ "chat_user": chat_user, "unlinked": true })))
}

fn api_error(e: ChatLinkError) -> ApiError {
    let said = e.to_string();
    match e {
        ChatLinkError::NotAdmin => ApiError::Forbidden(said),
        ChatLinkError::NoChat | ChatLinkError::NotLinked(_) => ApiError::NotFound(said),
        ChatLinkError::BadChatUser(_)
        | ChatLinkError::UnknownUser(_)
        | ChatLinkError::WhichChat { .. }
        | ChatLinkError::InConfig { .. } => ApiError::Unprocessable(said),
        ChatLinkError::Io(_) | ChatLinkError::Damaged(_) => ApiError::Unavailable(said),
    }
}

pub(super) fn openapi_paths() -> Value {
    let err = |d: &str| {
        json!({ "description": d,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
    };
    let chat_user = json!({ "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$",
        "description": "the chat user id (Slack's: U0123ABCD)" });
    let link = json!({ "type": "object", "required": ["chat_user", "user", "source", "state", "known"],
        "properties": {
            "chat_user": chat_user, "user": { "type": "string", "description": "the [[users]] name the chat user acts as" },
            "source": { "enum": ["admin", "config"], "description": "admin: kept in data_dir, unlinked here; config: a [[chat]] entry's users, changed in the configuration" },
            "chat": { "type": "string", "description": "the [[chat]] entry: of a configuration link, or the Slack entry an admin's link belongs to (its confirmation goes through it; left out for a link kept from before, which belongs to the first)" },
            "linked_by": { "type": "string" }, "linked_at": { "type": "string", "format": "date-time" },
            "state": { "enum": ["unconfirmed", "confirmed", "config"], "description": "unconfirmed: an admin's link the person it names has not confirmed, signed in, from the Slack account's direct message (decides nothing); confirmed: so confirmed; config: the configuration's" },
            "asked_at": { "type": "string", "format": "date-time", "description": "when the confirmation message was posted to the Slack user" },
            "confirmed_at": { "type": "string", "format": "date-time" },
            "known": { "type": "boolean", "description": "user is configured now (a link to a removed user decides nothing)" } } });
    let one =
        json!({ "description": "the link", "content": { "application/json": { "schema": link } } });
    json!({
        "/api/v1/chat/links": {
            "get": { "summary": "Chat accounts linked to people: the configuration's and the admins' (admin)",
                "security": [{ "bearer": [] }],
                "responses": { "200": { "description": "links", "content": { "application/json": {
                        "schema": { "type": "array", "items": link } } } },
                    "401": err("no or unknown credentials"), "403": err("not an admin") } },
            "post": { "summary": "Link a chat account to a configured person, unconfirmed: a direct message to the Slack user carries a link to /chat/links/confirm where that person, signed in, confirms it; its clicks decide as that person once confirmed (admin)",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["chat_user", "user"],
                    "properties": { "chat_user": chat_user, "user": { "type": "string" },
                        "chat": { "type": "string", "description": "the Slack [[chat]] entry (workspace) the account belongs to: its confirmation is sent through that entry's bot; required when several Slack entries are configured" } } } } } },
                "responses": { "200": one, "401": err("no or unknown credentials"), "403": err("not an admin"),
                    "404": err("no [[chat]] entry of kind slack"),
                    "422": err("not a chat user id, no such user, no such Slack entry (or none named where several are configured), or the chat user is linked in the configuration"),
                    "503": err("the links cannot be saved now, or data_dir/chat/links.json cannot be read (never saved over); nothing changed") } },
            "delete": { "summary": "Unlink an admin's link of a chat account; its clicks decide nothing from the next one (admin)",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["chat_user"],
                    "properties": { "chat_user": chat_user } } } } },
                "responses": { "200": { "description": "unlinked", "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "chat_user": { "type": "string" }, "unlinked": { "const": true } } } } } },
                    "401": err("no or unknown credentials"), "403": err("not an admin"),
                    "404": err("no admin's link of that chat user"),
                    "422": err("not a chat user id, or linked in the configuration (change it there)"),
                    "503": err("the links cannot be saved now, or data_dir/chat/links.json cannot be read (never saved over); nothing changed") } }
        }
    })
}
