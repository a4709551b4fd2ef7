//! Policies as code: a route's `auto_approve_if`, a CEL expression over the handoff, compiled
//! when the configuration is loaded (a bad one is refused with its column) and evaluated on
//! each handoff the route receives. The facts it sees are `handoff.*`: trigger, confidence,
//! labels, classification, from_agent, to_agent, workspace, title, artifacts (each with `path`
//! and `size` in bytes), checkpoints (how many the task has). `baton policy replay` evaluates
//! a candidate configuration's policies against what people decided.

use crate::contract::Handoff;
use cel_interpreter::{Context, Program, Value};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What an expression sees as `handoff`.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub trigger: String,
    pub confidence: f64,
    pub labels: Vec<String>,
    pub classification: String,
    pub from_agent: String,
    pub to_agent: String,
    pub workspace: String,
    pub title: String,
    pub artifacts: Vec<ArtifactFact>,
    pub checkpoints: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactFact {
    pub path: String,
    pub size: u64,
}

impl Facts {
    /// The facts of `h` in `workspace`, with its artifacts' sizes as received.
    pub fn of(
        h: &Handoff,
        workspace: &str,
        artifacts: Vec<ArtifactFact>,
        checkpoints: u64,
    ) -> Facts {
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        Facts {
            trigger: text(h.trigger.map(|t| serde_json::json!(t))),
            confidence: h.confidence.unwrap_or(0.0),
            labels: h.labels.clone(),
            classification: text(h.classification.map(|c| serde_json::json!(c))),
            from_agent: h.from_agent.clone(),
            to_agent: h.to_agent.clone().unwrap_or_default(),
            workspace: workspace.to_string(),
            title: h.title.clone().unwrap_or_default(),
            artifacts,
            checkpoints,
        }
    }
}

/// Compiles `expr`; a bad one is described with the column where it goes wrong. The CEL
/// parser panics on some malformed input (a dangling operator): that is a refusal too, caught
/// here, when the configuration is loaded, so no expression that gets past this panics later.
pub fn check(expr: &str) -> Result<(), String> {
    match std::panic::catch_unwind(|| compile(expr).map(drop)) {
        Ok(result) => result,
        Err(_) => Err("not a complete CEL expression (the parser gave up on it)".into()),
    }
}

fn compile(expr: &str) -> Result<Program, String> {
    Program::compile(expr).map_err(|errors| {
        let first = errors.errors.first();
        match first {
            Some(e) => format!("column {}: {}", e.pos.1 + 1, e.msg),
            None => "not a CEL expression".to_string(),
        }
    })
}

/// Whether `expr` holds for `facts`. An expression that does not give true or false, or fails
/// (a field that is not there, a type error), is an error: it decides nothing.
pub fn holds(expr: &str, facts: &Facts) -> Result<bool, String> {
    let program = compile(expr)?;
    let mut context = Context::default();
    let value = cel_interpreter::to_value(facts).map_err(|e| e.to_string())?;
    context.add_variable_from_value("handoff", value);
    match program.execute(&context) {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("gives {other:?}, not true or false")),
        Err(e) => Err(e.to_string()),
    }
}

/// How a decision names the policy that made it: `sha256:` and the hash of its text.
pub fn id(expr: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(expr.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(confidence: f64, sizes: &[u64]) -> Facts {
        let artifacts = sizes
            .iter()
            .map(|s| ArtifactFact {
                path: "inbox/a".into(),
                size: *s,
            })
            .collect();
        Facts {
            trigger: "completion".into(),
            confidence,
            labels: vec!["docs".into()],
            classification: "internal".into(),
            from_agent: "a".into(),
            to_agent: String::new(),
            workspace: "w".into(),
            title: String::new(),
            artifacts,
            checkpoints: 2,
        }
    }

    const RULE: &str = "handoff.trigger == 'completion' && handoff.confidence >= 0.97 && handoff.artifacts.all(a, a.size < 100000)";

    #[test]
    fn the_issue_s_rule_holds_only_for_what_it_says() {
        assert_eq!(holds(RULE, &facts(0.98, &[10, 20])), Ok(true));
        assert_eq!(holds(RULE, &facts(0.9, &[10])), Ok(false));
        assert_eq!(holds(RULE, &facts(0.99, &[10, 200_000])), Ok(false));
        assert_eq!(
            holds("'docs' in handoff.labels", &facts(0.5, &[])),
            Ok(true)
        );
    }

    #[test]
    fn a_bad_expression_names_its_column_and_a_non_boolean_decides_nothing() {
        let err = check("handoff.confidence >= 0.9 &&& true").unwrap_err();
        assert!(err.starts_with("column "), "{err}");
        assert!(
            check("handoff.confidence >= ").is_err(),
            "a dangling operator"
        );
        assert!(holds("handoff.confidence", &facts(0.5, &[])).is_err());
        assert!(holds("handoff.nosuch == 1", &facts(0.5, &[])).is_err());
    }
}
