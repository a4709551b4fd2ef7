//! `GET /api/v1/keys`: the public keys the daemon signs decisions with, current and rotated,
//! for `baton verify --url` and anyone checking a receipt.

use super::{ApiError, Caller};
use crate::blocking;
use crate::json::Json;
use axum::extract::State;
use baton::app::App;
use baton::receipts::PublicKey;

pub async fn list(
    State(app): State<App>,
    Caller(_): Caller,
) -> Result<Json<Vec<PublicKey>>, ApiError> {
    let keys = blocking(move || app.cx().public_keys()).await?;
    keys.map(Json)
        .map_err(|e| ApiError::Internal(format!("cannot read the keys: {e}")))
}

pub(super) fn openapi_paths() -> serde_json::Value {
    use serde_json::json;
    let key = json!({ "type": "object", "required": ["key_id", "alg", "public_key"], "properties": {
        "key_id": { "type": "string", "description": "`ed25519:` and 16 hex digits of the key's sha256, as in a receipt's key_id" },
        "alg": { "const": "ed25519" },
        "public_key": { "type": "string", "description": "hex of the 32-byte Ed25519 public key" } } });
    json!({ "/api/v1/keys": { "get": {
        "summary": "The public keys decisions are signed with (rotated ones too), to check a decision.json's receipt",
        "security": [{ "bearer": [] }],
        "responses": { "200": { "description": "the keys",
            "content": { "application/json": { "schema": { "type": "array", "items": key } } } },
            "401": { "description": "no or unknown credentials" } } } } })
}
