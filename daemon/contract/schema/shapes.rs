//! Errors for a value that fits none of the shapes a field allows (`anyOf`/`oneOf`, from the
//! untagged enums such as `scope`). jsonschema only says "none matched"; an agent needs to
//! hear the shapes, in words: `expected a string, or an object {covers, excludes} of strings
//! or string arrays, found the number 5`. When the value has the JSON type of exactly one
//! shape (an object where an object is allowed), the problem is inside it, so the value is
//! judged against that shape alone and its own, more precise, problems are reported.

use super::super::problem::{pointer_segments, Problem};
use super::{alternatives, describe, resolve, type_matches};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The problems behind an `anyOf`/`oneOf` failure. `root`: the schema the error came from;
/// `schema_path`: where its `anyOf`/`oneOf` is; `pointer`: where the value is.
pub(super) fn problems(
    root: &Value,
    schema_path: &str,
    pointer: &str,
    value: &Value,
) -> Vec<Problem> {
    let segments = pointer_segments(schema_path);
    let Some((keyword, path)) = segments.split_last() else {
        return vec![Problem::new(pointer, "matches none of the allowed shapes")];
    };
    let holder = path
        .iter()
        .fold(root, |node, segment| match segment.as_str() {
            "$ref" => resolve(node, root),
            s => match node {
                Value::Array(a) => s.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => node.get(s),
            }
            .unwrap_or(&Value::Null),
        });
    let choices: &[Value] = holder
        .get(keyword.as_str())
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let fitting: Vec<&Value> = choices
        .iter()
        .filter(|c| type_matches(resolve(c, root), value))
        .collect();
    if let [only] = fitting.as_slice() {
        let inner = within(root, only, pointer, value);
        if !inner.is_empty() {
            return inner;
        }
    }
    let shapes: Vec<String> = choices.iter().map(|c| shape(c, root, false)).collect();
    let message = format!(
        "expected {}, found {}",
        shapes.join(", or "),
        describe(value)
    );
    vec![Problem::new(pointer, message)]
}

/// The problems of `value` judged against the one shape `choice` (a subschema of `root`).
fn within(root: &Value, choice: &Value, pointer: &str, value: &Value) -> Vec<Problem> {
    let wrapper = json!({
        "$schema": root.get("$schema").cloned().unwrap_or(Value::Null),
        "definitions": root.get("definitions").cloned().unwrap_or_else(|| json!({})),
        "allOf": [choice],
    });
    let Some(validator) = validator(&wrapper) else {
        return Vec::new();
    };
    let errors: Vec<_> = validator.iter_errors(value).collect();
    errors
        .iter()
        .flat_map(|e| super::problems_of(e, &wrapper, pointer))
        .collect()
}

/// Validators of single shapes, built on first use: only files with such a mistake need one,
/// and a handful of shapes exist.
fn validator(schema: &Value) -> Option<Arc<jsonschema::Validator>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> = OnceLock::new();
    let key = schema.to_string();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(v) = cache.get(&key) {
        return Some(v.clone());
    }
    let built = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .ok()?;
    let built = Arc::new(built);
    cache.insert(key, built.clone());
    Some(built)
}

/// A schema in words: `a string`, `an array of strings`, `an object {covers, excludes} of
/// strings or string arrays`; `plural` for the items of a list or the values of an object.
pub(super) fn shape(node: &Value, root: &Value, plural: bool) -> String {
    let node = resolve(node, root);
    let choices = alternatives(node);
    if !choices.is_empty() {
        let words: Vec<String> = choices.iter().map(|c| shape(c, root, plural)).collect();
        return words.join(" or ");
    }
    if let Some(options) = node.get("enum").and_then(Value::as_array) {
        let list: Vec<String> = options.iter().map(Value::to_string).collect();
        return format!("one of {}", list.join(", "));
    }
    let one = |a: &str, word: &str| {
        if plural {
            format!("{word}s")
        } else {
            format!("{a} {word}")
        }
    };
    match node.get("type").and_then(Value::as_str) {
        Some("string") => one("a", "string"),
        Some("number") => one("a", "number"),
        Some("integer") => one("an", "integer"),
        Some("boolean") => one("a", "boolean"),
        Some("array") => {
            let items = node.get("items").map(|i| resolve(i, root));
            let simple = items
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                .filter(|t| ["string", "number", "integer", "boolean"].contains(t));
            match (simple, items) {
                (Some(t), _) if plural => format!("{t} arrays"),
                (_, Some(i)) => format!("{} of {}", one("an", "array"), shape(i, root, true)),
                (_, None) => one("an", "array"),
            }
        }
        Some("object") => object_shape(node, root, &one("an", "object")),
        _ => one("a", "value"),
    }
}

/// `an object {a, b}` (required fields first), `of X` when every field has the shape X.
fn object_shape(node: &Value, root: &Value, noun: &str) -> String {
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return noun.to_string();
    };
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut names: Vec<&str> = props.keys().map(String::as_str).collect();
    names.sort_by_key(|n| !required.contains(n));
    let shapes: Vec<String> = props.values().map(|p| shape(p, root, true)).collect();
    match shapes.split_first() {
        Some((same, rest)) if rest.iter().all(|s| s == same) => {
            format!("{noun} {{{}}} of {same}", names.join(", "))
        }
        _ => format!("{noun} {{{}}}", names.join(", ")),
    }
}
