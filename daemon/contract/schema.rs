//! JSON Schemas generated from the contract types, and the validators built from them. The
//! schema `baton schema KIND` prints is the one validation runs.

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

/// Optional fields are written absent, not `null`: drop the `null` alternative schemars adds
/// for `Option<T>`, so a `null` gets a plain "expected a string" and not an `anyOf` riddle.
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
    let problems = errors.by_ref().take(limit).map(|e| problem(&e)).collect();
    (problems, errors.count())
}

fn problem(e: &jsonschema::ValidationError) -> Problem {
    let base = e.instance_path.as_str().to_string();
    match &e.kind {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            Problem::new(
                super::problem::push_pointer(&base, name),
                format!("required field \"{name}\" is missing"),
            )
        }
        kind => Problem::new(base, sentence(kind, &e.instance)),
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
        ValidationErrorKind::AnyOf | ValidationErrorKind::OneOfNotValid => {
            format!("{found} matches none of the allowed shapes")
        }
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
