//! JSON Schemas generated from the contract types, and the validators built from them. The
//! schema `baton schema KIND` prints is the one validation runs.

mod shapes;

use super::{checkpoint::Checkpoint, decision::Decision, handoff::Handoff, problem::Problem};
use jsonschema::error::{TypeKind, ValidationErrorKind};
use schemars::generate::SchemaSettings;
use serde_json::Value;
use std::sync::OnceLock;

/// The three contract documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Handoff,
    Checkpoint,
    Decision,
}

/// The JSON Schema of a contract document. Draft-07: the most widely supported draft, and
/// its validator is half the memory of a 2020-12 one (whose meta-schema is far larger).
pub fn schema(kind: Kind) -> &'static Value {
    static SCHEMAS: [OnceLock<Value>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    SCHEMAS[kind as usize].get_or_init(|| generate(kind, SchemaSettings::draft07()))
}

/// The same schema with every subschema inlined and no `$schema`, for embedding in another
/// document (the OpenAPI description), where `#/definitions/...` would not resolve.
pub fn inline_schema(kind: Kind) -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.inline_subschemas = true;
    let mut value = generate(kind, settings);
    if let Some(map) = value.as_object_mut() {
        map.remove("$schema");
    }
    value
}

/// The draft-07 JSON Schema of any other type baton writes for others to read (the export).
pub fn schema_for<T: schemars::JsonSchema>() -> Value {
    let mut value = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
        .to_value();
    strip_null(&mut value);
    value
}

fn generate(kind: Kind, settings: SchemaSettings) -> Value {
    let generator = settings.into_generator();
    let mut value = match kind {
        Kind::Handoff => generator.into_root_schema_for::<Handoff>(),
        Kind::Checkpoint => generator.into_root_schema_for::<Checkpoint>(),
        Kind::Decision => generator.into_root_schema_for::<Decision>(),
    }
    .to_value();
    strip_null(&mut value);
    value
}

/// Optional fields are written absent, not `null` (a `null` given for one is dropped before
/// validation, see `nulls`): drop the `null` alternative schemars adds for `Option<T>`, so the
/// schema says what a present value must be.
fn strip_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            let any_of = map.get_mut("anyOf").and_then(Value::as_array_mut);
            if let Some(options) = any_of {
                options.retain(|o| o.get("type").is_none_or(|t| t != "null"));
                if options.len() == 1 {
                    if let Some(Value::Object(only)) = map.remove("anyOf").map(|mut a| a[0].take())
                    {
                        map.extend(only);
                    }
                }
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

fn validator(kind: Kind) -> &'static jsonschema::Validator {
    static VALIDATORS: [OnceLock<jsonschema::Validator>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    VALIDATORS[kind as usize].get_or_init(|| {
        jsonschema::options()
            .should_validate_formats(true)
            .build(schema(kind))
            .expect("schemas generated from our own types are valid")
    })
}

/// The schema problems of `instance`: the first `limit` with a pointer and a sentence (no
/// position yet), and how many more there were (counted, not kept: a 1 MiB file can hold half
/// a million mistakes).
pub fn check(kind: Kind, instance: &Value, limit: usize) -> (Vec<Problem>, usize) {
    let mut errors = validator(kind).iter_errors(instance);
    let problems = errors
        .by_ref()
        .take(limit)
        .flat_map(|e| problems_of(&e, schema(kind), ""))
        .collect();
    (problems, errors.count())
}

/// The problems one validation error stands for; `root` is the schema it came from, `base`
/// the pointer of the value that schema judged.
pub(super) fn problems_of(
    e: &jsonschema::ValidationError,
    root: &Value,
    base: &str,
) -> Vec<Problem> {
    let pointer = format!("{base}{}", e.instance_path().as_str());
    match e.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            vec![Problem::new(
                super::problem::push_pointer(&pointer, name),
                format!("required field \"{name}\" is missing"),
            )]
        }
        ValidationErrorKind::AnyOf { .. } | ValidationErrorKind::OneOfNotValid { .. } => {
            shapes::problems(root, e.schema_path().as_str(), &pointer, e.instance())
        }
        kind => vec![Problem::new(pointer, sentence(kind, e.instance()))],
    }
}

/// The schema a `$ref` node points to (within `root`), or the node itself.
pub(super) fn resolve<'a>(node: &'a Value, root: &'a Value) -> &'a Value {
    let target = node.get("$ref").and_then(Value::as_str);
    match target.and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(node),
        None => node,
    }
}

/// The shapes an untagged choice allows (`anyOf`/`oneOf`), if the node is one.
pub(super) fn alternatives(node: &Value) -> Vec<&Value> {
    ["anyOf", "oneOf"]
        .iter()
        .filter_map(|k| node.get(*k).and_then(Value::as_array))
        .flatten()
        .collect()
}

/// Whether `value` has the JSON type the (resolved) schema `node` names.
pub(super) fn type_matches(node: &Value, value: &Value) -> bool {
    let Some(t) = node.get("type").and_then(Value::as_str) else {
        return false;
    };
    match value {
        Value::Null => t == "null",
        Value::Bool(_) => t == "boolean",
        Value::Number(n) => t == "number" || (t == "integer" && (n.is_i64() || n.is_u64())),
        Value::String(_) => t == "string",
        Value::Array(_) => t == "array",
        Value::Object(_) => t == "object",
    }
}

fn sentence(kind: &ValidationErrorKind, instance: &Value) -> String {
    let found = describe(instance);
    match kind {
        ValidationErrorKind::Type {
            kind: TypeKind::Single(t),
        } => format!("expected {}, found {found}", article(&t.to_string())),
        ValidationErrorKind::Enum { options } => {
            let list: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|o| o.to_string()).collect())
                .unwrap_or_default();
            format!("must be one of {}, found {found}", list.join(", "))
        }
        ValidationErrorKind::Maximum { limit } => format!("must be at most {limit}, found {found}"),
        ValidationErrorKind::Minimum { limit } => {
            format!("must be at least {limit}, found {found}")
        }
        ValidationErrorKind::MaxLength { limit } => format!("must be at most {limit} characters"),
        ValidationErrorKind::MaxItems { limit } => {
            let count = instance.as_array().map_or(0, Vec::len);
            format!("must have at most {limit} items, found {count}")
        }
        ValidationErrorKind::MinLength { limit: 1 } => "must not be empty".into(),
        ValidationErrorKind::MinLength { limit } => format!("must be at least {limit} characters"),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{found} does not match the pattern {pattern}")
        }
        ValidationErrorKind::Format { format } => format!("{found} is not a valid {format}"),
        other => format!("{other:?}"),
    }
}

fn article(t: &str) -> String {
    match t {
        "array" | "object" | "integer" => format!("an {t}"),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

/// A short description of a JSON value for messages; never echoes a huge value whole.
pub fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 60 => {
            format!("the string \"{}…\"", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("the string {}", Value::String(s.clone())),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
