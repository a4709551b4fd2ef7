//! JSON request bodies of the HTTP API, read the way the published OpenAPI document
//! (JSON Schema 2020-12) describes them, so a client generated from the document is never
//! refused for what the document allows, nor accepted for what it forbids:
//!
//! * a number with a zero fraction (`60.0`) is an integer, as JSON Schema counts it;
//! * a member present as `null` is refused, naming it: the document types each member
//!   (a string, an integer...) and leaves out `null`; an optional member is left out instead.
//!
//! Then the body is deserialized into the handler's type, whose own rules follow.

use serde::de::DeserializeOwned;
use serde_json::{Number, Value};

/// Limits of a decision request (`POST /api/v1/handoffs/{key}/decision`, and the bulk one),
/// in characters, as the schema's `maxLength` counts. With them the longest body, however it
/// is escaped (12 bytes for a character outside the BMP), fits `MAX_DECISION_BODY`.
pub mod decision {
    /// Longest `comment`.
    pub const MAX_COMMENT: usize = 64 * 1024;
    /// Longest `to_agent` of a reassignment (as long as a handoff `id`).
    pub const MAX_TO_AGENT: usize = 128;
    /// Longest `instructions`.
    pub const MAX_INSTRUCTIONS: usize = 64 * 1024;
    /// Most items of an edited `remaining`.
    pub const MAX_ITEMS: usize = 1000;
    /// Longest item of an edited `remaining`: a line of a to-do list.
    pub const MAX_ITEM: usize = 1024;
    /// The decision route's body limit, in bytes.
    pub const MAX_DECISION_BODY: usize = 16 * 1024 * 1024;
}

/// Why a body is refused, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("bad body: {0}")]
    Malformed(String),
    #[error("bad body: `{0}` is null; leave the member out, or give it a value of its type")]
    Null(String),
}

/// Parses `bytes` as a JSON body of type `T`.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| BodyError::Malformed(e.to_string()))?;
    if let Some(members) = value.as_object() {
        if let Some((name, _)) = members.iter().find(|(_, v)| v.is_null()) {
            return Err(BodyError::Null(name.clone()));
        }
    }
    integral_floats_as_integers(&mut value);
    serde_json::from_value(value).map_err(|e| BodyError::Malformed(e.to_string()))
}

/// Rewrites every number with a zero fraction that fits an integer type (`60.0`, `-2.0`,
/// `1e3`) as that integer, so an integer field takes it. Others are left as they are, and the
/// field's type refuses them (`60.5`, `1e300` for a `u64`).
fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(whole) = n.as_f64().filter(|_| n.is_f64()).and_then(as_integer) {
                *n = whole;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(members) => members.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// `x` as an integer `Number`, when it is one exactly.
fn as_integer(x: f64) -> Option<Number> {
    if x.fract() != 0.0 || !x.is_finite() {
        return None;
    }
    // 2^64 and -2^63 are exact in f64; the casts below are exact inside these bounds.
    if (0.0..18_446_744_073_709_551_616.0).contains(&x) {
        Some(Number::from(x as u64))
    } else if (-9_223_372_036_854_775_808.0..0.0).contains(&x) {
        Some(Number::from(x as i64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_body, BodyError};
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        ttl_s: Option<u64>,
        purpose: Option<String>,
        at: Option<i64>,
    }

    #[test]
    fn a_whole_float_is_an_integer_and_others_are_not() {
        let b: Body = parse_body(br#"{"ttl_s": 60.0, "at": -2.0}"#).unwrap();
        assert_eq!((b.ttl_s, b.at), (Some(60), Some(-2)));
        let b: Body = parse_body(br#"{"ttl_s": 6e1}"#).unwrap();
        assert_eq!(b.ttl_s, Some(60));
        for refused in [
            r#"{"ttl_s": 60.5}"#,
            r#"{"ttl_s": 1e300}"#,
            r#"{"ttl_s": -1.0}"#,
        ] {
            assert!(parse_body::<Body>(refused.as_bytes()).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_longest_decision_fits_the_body_limit_however_escaped() {
        use super::decision::*;
        let chars = MAX_COMMENT + MAX_TO_AGENT + MAX_INSTRUCTIONS + MAX_ITEMS * MAX_ITEM;
        // 12 bytes a character (a surrogate pair escaped), quotes and commas, member names.
        let worst = chars * 12 + MAX_ITEMS * 3 + 1024;
        assert!(worst < MAX_DECISION_BODY, "{worst}");
    }

    #[test]
    fn a_null_member_is_refused_by_name() {
        let e = parse_body::<Body>(br#"{"ttl_s": 5, "purpose": null}"#).unwrap_err();
        assert_eq!(e, BodyError::Null("purpose".into()));
        assert!(e.to_string().contains("`purpose` is null"), "{e}");
        let b: Body = parse_body(br#"{"ttl_s": 5}"#).unwrap();
        assert_eq!(b.purpose, None);
    }
}
