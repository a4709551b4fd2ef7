//! The public keys the daemon signs decisions with, current and rotated, for `baton verify
//! --url` and anyone checking an attestation: `GET /api/v1/keys` (baton's list) and
//! `GET /.well-known/jwks.json` (RFC 7517/8037, for JOSE tooling). Both are open: a verifier
//! needs no credential, and a public key is no secret.

use super::ApiError;
use crate::blocking;
use crate::json::Json;
use axum::extract::State;
use base64::Engine;
use baton::app::App;
use baton::receipts::PublicKey;

async fn keys(app: App) -> Result<Vec<PublicKey>, ApiError> {
    let keys = blocking(move || app.cx().public_keys()).await?;
    keys.map_err(|e| ApiError::Internal(format!("cannot read the keys: {e}")))
}

pub async fn list(State(app): State<App>) -> Result<Json<Vec<PublicKey>>, ApiError> {
    keys(app).await.map(Json)
}

/// The same keys as a JSON Web Key Set: Ed25519 as OKP (`x`: base64url of the 32 bytes), `kid`
/// the key id decisions name.
pub async fn jwks(State(app): State<App>) -> Result<Json<serde_json::Value>, ApiError> {
    let keys = keys(app).await?;
    let set: Vec<serde_json::Value> = keys
        .iter()
        .filter_map(|k| {
            let bytes = hex::decode(&k.public_key).ok()?;
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            Some(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": x, "kid": k.key_id,
                "alg": "EdDSA", "use": "sig",
            }))
        })
        .collect();
    Ok(Json(serde_json::json!({ "keys": set })))
}

pub(super) fn openapi_paths() -> serde_json::Value {
    use serde_json::json;
    let key = json!({ "type": "object", "required": ["key_id", "alg", "public_key"], "properties": {
        "key_id": { "type": "string", "description": "`ed25519:` and 16 hex digits of the key's sha256, as in a receipt's key_id" },
        "alg": { "const": "ed25519" },
        "public_key": { "type": "string", "description": "hex of the 32-byte Ed25519 public key" } } });
    json!({ "/api/v1/keys": { "get": {
        "summary": "The public keys decisions are signed with (rotated ones too), to check a decision.json's receipt",
        "security": [],
        "responses": { "200": { "description": "the keys",
            "content": { "application/json": { "schema": { "type": "array", "items": key } } } } } } },
        "/.well-known/jwks.json": { "get": {
        "summary": "The same keys as a JSON Web Key Set (Ed25519 as OKP, kid = key_id)",
        "security": [],
        "responses": { "200": { "description": "the key set",
            "content": { "application/json": { "schema": { "type": "object", "required": ["keys"],
                "properties": { "keys": { "type": "array", "items": { "type": "object",
                    "required": ["kty", "crv", "x", "kid"],
                    "properties": { "kty": { "const": "OKP" }, "crv": { "const": "Ed25519" },
                        "x": { "type": "string" }, "kid": { "type": "string" },
                        "alg": { "const": "EdDSA" }, "use": { "const": "sig" } } } } } } } } } } } } })
}
