//! `null` means absent: Pydantic dumps and LLM output write `"summary": null` for a field they
//! have no value for. Before a document is judged, every `null` that stands for an optional
//! field of the contract is removed, so it is taken as absent, hashed as absent (the same key
//! and digest as leaving it out) and never written back.
//!
//! Only fields the schema knows are touched: a `null` in a required field is still an error,
//! and one inside free-form data (`context`, `state`, unknown fields) is the agent's own value.

use super::schema::{self, Kind};
use serde_json::Value;

/// Removes the `null` optional fields of `value` (a whole contract document); whether any were.
pub fn drop_absent(kind: Kind, value: &mut Value) -> bool {
    let root = schema::schema(kind);
    walk(root, root, value)
}

fn walk(node: &Value, root: &Value, value: &mut Value) -> bool {
    let node = schema::resolve(node, root);
    let mut dropped = false;
    match value {
        Value::Object(map) => {
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                let required = |k: &str| {
                    node.get("required")
                        .and_then(Value::as_array)
                        .is_some_and(|r| r.iter().any(|n| n == k))
                };
                let before = map.len();
                map.retain(|k, v| !(v.is_null() && props.contains_key(k) && !required(k)));
                dropped |= map.len() != before;
                for (k, v) in map.iter_mut() {
                    if let Some(sub) = props.get(k) {
                        dropped |= walk(sub, root, v);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = node.get("items") {
                for item in items.iter_mut() {
                    dropped |= walk(item_schema, root, item);
                }
            }
        }
        _ => {}
    }
    // An untagged choice (`scope`, a checkpoint's artifact): follow the alternative of the
    // value's own JSON type, the one serde will read it as.
    if let Some(alternative) = schema::alternatives(node)
        .into_iter()
        .map(|a| schema::resolve(a, root))
        .find(|a| schema::type_matches(a, value))
    {
        dropped |= walk(alternative, root, value);
    }
    dropped
}
