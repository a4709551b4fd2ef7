//! Policies as code: a route's `auto_approve_if`, a CEL expression over what baton knows of a
//! handoff, checked when the configuration is loaded and evaluated on each handoff the route
//! receives. `baton policy replay` evaluates a candidate configuration's policies against what
//! people decided.
//!
//! The facts are of three kinds:
//!
//! * proven, what the daemon established itself: `sender` (the agent whose token uploaded
//!   this exact revision through the API, its handoff and its artifacts' bytes, see `proof`;
//!   `""` when none did, as for any file written on the share), `route`, `workspace`, and of
//!   `artifacts` each `path`, and `size` and `sha256` as the daemon read them at receipt (true
//!   of the bytes, not of who wrote them: only `sender` says that);
//! * read from the share, which any writer of the workspace folder can set: `checkpoints` (how
//!   many valid checkpoint files the task had; anyone can write more);
//! * claimed, what the agent wrote in handoff.json: `claimed.trigger`, `confidence`, `labels`,
//!   `classification`, `from_agent`, `to_agent`, `title`.
//!
//! So only `sender` ties a revision to an agent, and a policy that can hold without it
//! (`binds_sender`) approves whatever any writer of the share writes under any name: refused
//! at load unless its route opts in (`auto_approve_unproven`).
//!
//! `handoff.*`, the older name of the claims, is still read (so are `handoff.workspace`,
//! `handoff.artifacts` and `handoff.checkpoints`), except `handoff.from_agent`: a policy that
//! took it for the sender would approve anyone who types the name, so it is refused at load
//! with a pointer to `sender` and `claimed.from_agent`.
//!
//! An expression must be boolean throughout (`check`): not boolean as a whole, a non-boolean
//! operand of `&&`, `||`, `!` or `? :`, an unknown fact or field, a comparison that can never
//! hold, an unknown function: each is refused at load with its column. At run time an error or
//! a result that is not true or false decides nothing (`holds` says why).

mod binds;
mod bounds;
mod check;
pub mod proof;
mod tickets;

pub use binds::binds_sender;

use crate::contract::Handoff;
use bounds::within_bounds;
use cel_interpreter::{Context, Program, Value};
use check::{Schema, Scope, Ty};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The facts, as `baton policy replay` states them above its tables.
pub const LEGEND: &str = "policy facts: proven by the daemon: sender (the agent whose token \
uploaded this revision, its handoff and its artifacts' bytes, through the API; \"\" for a file \
written on the share, whatever it claims), route, workspace, artifacts (path; size and sha256 of \
the bytes as received, whoever wrote them); read from the share, which any writer of the \
workspace folder sets: checkpoints; claimed by the agent in handoff.json: claimed.trigger, \
claimed.confidence, claimed.labels, claimed.classification, claimed.from_agent, \
claimed.to_agent, claimed.title";

/// What an expression sees: each field is a variable.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// The agent proven to have sent it (see `proof`); `""`: no agent proved it.
    pub sender: String,
    /// The route it is on.
    pub route: String,
    pub workspace: String,
    /// The artifacts as the daemon read them at receipt.
    pub artifacts: Vec<ArtifactFact>,
    /// Valid checkpoint files of its task in the workspace at receipt: read from the share,
    /// so any writer of the workspace folder can raise it.
    pub checkpoints: i64,
    /// What handoff.json says.
    pub claimed: Claimed,
}

/// What the agent wrote in handoff.json: claims, not proof.
#[derive(Debug, Clone, Serialize)]
pub struct Claimed {
    pub trigger: String,
    pub confidence: f64,
    pub labels: Vec<String>,
    pub classification: String,
    pub from_agent: String,
    pub to_agent: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactFact {
    pub path: String,
    pub size: i64,
    pub sha256: String,
}

/// The older `handoff` variable: the claims but `from_agent`, and the workspace, artifacts
/// and checkpoints.
#[derive(Serialize)]
struct Legacy<'a> {
    trigger: &'a str,
    confidence: f64,
    labels: &'a [String],
    classification: &'a str,
    to_agent: &'a str,
    title: &'a str,
    workspace: &'a str,
    artifacts: &'a [ArtifactFact],
    checkpoints: i64,
}

impl Facts {
    /// The facts of `h`, received on `route` in `workspace` from the proven `sender` (if any),
    /// with its artifacts as received.
    pub fn of(
        h: &Handoff,
        workspace: &str,
        route: &str,
        sender: Option<String>,
        artifacts: Vec<ArtifactFact>,
        checkpoints: u64,
    ) -> Facts {
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        Facts {
            sender: sender.unwrap_or_default(),
            route: route.to_string(),
            workspace: workspace.to_string(),
            artifacts,
            checkpoints: i64::try_from(checkpoints).unwrap_or(i64::MAX),
            claimed: Claimed {
                trigger: text(h.trigger.map(|t| serde_json::json!(t))),
                confidence: h.confidence.unwrap_or(0.0),
                labels: h.labels.clone(),
                classification: text(h.classification.map(|c| serde_json::json!(c))),
                from_agent: h.from_agent.clone(),
                to_agent: h.to_agent.clone().unwrap_or_default(),
                title: h.title.clone().unwrap_or_default(),
            },
        }
    }

    fn legacy(&self) -> Legacy<'_> {
        let c = &self.claimed;
        Legacy {
            trigger: &c.trigger,
            confidence: c.confidence,
            labels: &c.labels,
            classification: &c.classification,
            to_agent: &c.to_agent,
            title: &c.title,
            workspace: &self.workspace,
            artifacts: &self.artifacts,
            checkpoints: self.checkpoints,
        }
    }
}

fn string() -> Ty {
    Ty::Str
}
fn int() -> Ty {
    Ty::Int
}
fn double() -> Ty {
    Ty::Double
}
fn strings() -> Ty {
    Ty::List(Box::new(Ty::Str))
}
fn artifact() -> Ty {
    Ty::Record(&ARTIFACT)
}
fn artifacts() -> Ty {
    Ty::List(Box::new(artifact()))
}
fn claimed() -> Ty {
    Ty::Record(&CLAIMED)
}
fn legacy() -> Ty {
    Ty::Record(&LEGACY)
}

static ARTIFACT: Schema = Schema {
    name: "an artifact",
    fields: &[("path", string), ("size", int), ("sha256", string)],
    refused: &[],
};

static CLAIMED: Schema = Schema {
    name: "claimed",
    fields: &[
        ("trigger", string),
        ("confidence", double),
        ("labels", strings),
        ("classification", string),
        ("from_agent", string),
        ("to_agent", string),
        ("title", string),
    ],
    refused: &[],
};

static LEGACY: Schema = Schema {
    name: "handoff (the older name of claimed)",
    fields: &[
        ("trigger", string),
        ("confidence", double),
        ("labels", strings),
        ("classification", string),
        ("to_agent", string),
        ("title", string),
        ("workspace", string),
        ("artifacts", artifacts),
        ("checkpoints", int),
    ],
    refused: &[(
        "from_agent",
        "`handoff.from_agent` is only what the file claims, not who sent it: write `sender` \
         (the agent proven to have sent it, \"\" when none is) or, to test the claim as a \
         claim, `claimed.from_agent`",
    )],
};

/// The facts an expression may name, with their types.
static FACTS: check::Fields = &[
    ("sender", string),
    ("route", string),
    ("workspace", string),
    ("artifacts", artifacts),
    ("checkpoints", int),
    ("claimed", claimed),
    ("handoff", legacy),
];

/// Checks `expr` when the configuration is loaded: it must parse, name only facts there are,
/// and be boolean throughout. A refusal names the column where it goes wrong. The CEL parser
/// panics on some malformed input (a dangling operator): that is a refusal too, caught here,
/// so no expression that gets past this panics later.
pub fn check(expr: &str) -> Result<(), String> {
    within_bounds(expr)?;
    let parsed = std::panic::catch_unwind(|| cel_parser::Parser::default().parse(expr));
    let ast = match parsed {
        Err(_) => return Err("not a complete CEL expression (the parser gave up on it)".into()),
        Ok(Err(errors)) => return Err(parse_error(&errors)),
        Ok(Ok(ast)) => ast,
    };
    let refused = |r: check::Refusal| format!("column {}: {}", check::column(expr, &r.at), r.msg);
    match Scope::new(FACTS).infer(&ast).map_err(refused)? {
        Ty::Bool => Ok(()),
        other => Err(format!(
            "column 1: the expression gives {}, not true or false; a policy must be a condition \
             (e.g. `claimed.confidence >= 0.9`)",
            other.describe()
        )),
    }
}

fn parse_error(errors: &cel_interpreter::ParseErrors) -> String {
    match errors.errors.first() {
        Some(e) => format!("column {}: {}", e.pos.1 + 1, e.msg),
        None => "not a CEL expression".to_string(),
    }
}

fn compile(expr: &str) -> Result<Program, String> {
    within_bounds(expr)?;
    match std::panic::catch_unwind(|| Program::compile(expr)) {
        Ok(Ok(program)) => Ok(program),
        Ok(Err(errors)) => Err(parse_error(&errors)),
        Err(_) => Err("not a complete CEL expression (the parser gave up on it)".into()),
    }
}

/// Whether `expr` holds for `facts`. An expression that does not give true or false, or fails
/// (a type error, a panic in the interpreter), is an error: it decides nothing.
pub fn holds(expr: &str, facts: &Facts) -> Result<bool, String> {
    holds_compiled(&compile(expr)?, facts)
}

/// `holds` over expressions compiled once, for the fuzz targets (fuzz/): compiling is most of
/// `holds`' time, and a target that fuzzes the facts evaluates a fixed set of policies.
#[doc(hidden)]
pub mod fuzzing {
    use super::{compile, context_of, holds_compiled, run, Facts};

    /// An expression as `holds` compiles it.
    pub struct Compiled(cel_interpreter::Program);

    impl Compiled {
        pub fn new(expr: &str) -> Result<Compiled, String> {
            compile(expr).map(Compiled)
        }

        /// `holds(expr, facts)`, without compiling `expr` again.
        pub fn holds(&self, facts: &Facts) -> Result<bool, String> {
            holds_compiled(&self.0, facts)
        }

        /// `holds(expr, facts)` over facts already given (`Given`): what `holds` runs once
        /// it has made the context, for a target that evaluates many expressions over the
        /// same facts.
        pub fn holds_given(&self, given: &Given) -> Result<bool, String> {
            run(&self.0, &given.0)
        }
    }

    /// Facts as `holds` gives them to an expression (its context), made once.
    pub struct Given(cel_interpreter::Context<'static>);

    impl Given {
        pub fn new(facts: &Facts) -> Result<Given, String> {
            context_of(facts).map(Given)
        }
    }
}

fn holds_compiled(program: &Program, facts: &Facts) -> Result<bool, String> {
    run(program, &context_of(facts)?)
}

/// The facts as variables of an expression.
fn context_of(facts: &Facts) -> Result<Context<'static>, String> {
    let mut context = Context::default();
    let value = |v: Result<Value, cel_interpreter::SerializationError>| {
        v.map_err(|e| format!("the facts cannot be given to the expression: {e}"))
    };
    context.add_variable_from_value("sender", facts.sender.clone());
    context.add_variable_from_value("route", facts.route.clone());
    context.add_variable_from_value("workspace", facts.workspace.clone());
    context.add_variable_from_value("checkpoints", facts.checkpoints);
    context.add_variable_from_value(
        "artifacts",
        value(cel_interpreter::to_value(&facts.artifacts))?,
    );
    context.add_variable_from_value("claimed", value(cel_interpreter::to_value(&facts.claimed))?);
    context.add_variable_from_value("handoff", value(cel_interpreter::to_value(facts.legacy()))?);
    Ok(context)
}

/// `program` over `context`: true or false, or why it decides nothing.
fn run(program: &Program, context: &Context) -> Result<bool, String> {
    let run = std::panic::AssertUnwindSafe(|| program.execute(context));
    match std::panic::catch_unwind(run) {
        Ok(Ok(Value::Bool(b))) => Ok(b),
        Ok(Ok(other)) => Err(format!("gives {other:?}, not true or false")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the interpreter failed on it".into()),
    }
}

/// Whether `expr` reads the artifacts (`artifacts`, or `handoff`, which carries them): what
/// replay cannot give for a revision whose artifacts the store did not keep.
pub fn reads_artifacts(expr: &str) -> bool {
    compile(expr).is_ok_and(|p| {
        let r = p.references();
        r.has_variable("artifacts") || r.has_variable("handoff")
    })
}

/// How a decision names the policy that made it: `sha256:` and the hash of its text.
pub fn id(expr: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(expr.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(confidence: f64, sizes: &[i64]) -> Facts {
        let artifacts = sizes
            .iter()
            .map(|s| ArtifactFact {
                path: "inbox/a".into(),
                size: *s,
                sha256: "ab".into(),
            })
            .collect();
        Facts {
            sender: String::new(),
            route: "docs".into(),
            workspace: "w".into(),
            artifacts,
            checkpoints: 2,
            claimed: Claimed {
                trigger: "completion".into(),
                confidence,
                labels: vec!["docs".into()],
                classification: "internal".into(),
                from_agent: "release-bot".into(),
                to_agent: String::new(),
                title: "a title".into(),
            },
        }
    }

    const RULE: &str = "claimed.trigger == 'completion' && claimed.confidence >= 0.97 && artifacts.all(a, a.size < 100000)";

    /// The deepest expressions the bounds take: each operator is a level of the parse tree
    /// and of the interpreter's recursion, though no bracket nests. They must be evaluated,
    /// never overflow the stack (a test thread's is 2 MiB, in a debug build).
    #[test]
    fn the_deepest_expressions_taken_do_not_overflow_the_stack() {
        let deepest = |inner: String| format!("{}{inner}{}", "(".repeat(31), ")".repeat(31));
        let sums = deepest(format!("{}1 == 1", "1 + ".repeat(126)));
        let fields = deepest(format!("claimed{} == 1", ".a".repeat(126)));
        let ands = deepest(format!("{}true", "true && ".repeat(127)));
        for expr in [sums, fields, ands] {
            assert_eq!(bounds::within_bounds(&expr), Ok(()), "{expr}");
            let _ = check(&expr);
            let _ = holds(&expr, &facts(0.5, &[]));
        }
    }

    #[test]
    fn the_issue_s_rule_holds_only_for_what_it_says() {
        assert_eq!(check(RULE), Ok(()));
        assert_eq!(holds(RULE, &facts(0.98, &[10, 20])), Ok(true));
        assert_eq!(holds(RULE, &facts(0.9, &[10])), Ok(false));
        assert_eq!(holds(RULE, &facts(0.99, &[10, 200_000])), Ok(false));
        assert_eq!(
            holds("'docs' in claimed.labels", &facts(0.5, &[])),
            Ok(true)
        );
        // The older names of the claims still read the same.
        let old = "handoff.trigger == 'completion' && handoff.confidence >= 0.97 && handoff.artifacts.all(a, a.size < 100000) && handoff.checkpoints >= 2";
        assert_eq!(check(old), Ok(()));
        assert_eq!(holds(old, &facts(0.98, &[10])), Ok(true));
    }

    #[test]
    fn a_bad_expression_names_its_column_and_a_non_boolean_decides_nothing() {
        let deep = format!("{}true{}", "(".repeat(300), ")".repeat(300));
        assert!(check(&deep).unwrap_err().contains("nested deeper than 32"));
        assert!(holds(&deep, &facts(0.5, &[])).is_err());
        let negated = format!("{}true", "!".repeat(300));
        assert!(check(&negated).unwrap_err().contains("nested deeper"));
        assert_eq!(
            check(&format!("{}true{}", "(".repeat(30), ")".repeat(30))),
            Ok(())
        );
        let err = check("claimed.confidence >= 0.9 &&& true").unwrap_err();
        assert!(err.starts_with("column "), "{err}");
        assert!(
            check("claimed.confidence >= ").is_err(),
            "a dangling operator"
        );
        assert!(holds("claimed.confidence", &facts(0.5, &[])).is_err());
        assert!(holds("claimed.nosuch == 1", &facts(0.5, &[])).is_err());
    }

    #[test]
    fn the_sender_is_what_was_proven_and_a_claimed_one_is_refused_as_proof() {
        let err = check("handoff.from_agent == 'release-bot'").unwrap_err();
        assert!(
            err.starts_with("column 1: `handoff.from_agent` is only what the file claims"),
            "{err}"
        );
        assert!(
            err.contains("`sender`") && err.contains("`claimed.from_agent`"),
            "{err}"
        );
        let err = check("claimed.confidence > 0.5 && handoff['from_agent'] == 'x'").unwrap_err();
        assert!(err.contains("only what the file claims"), "{err}");
        let proven = "sender == 'release-bot'";
        assert_eq!(check(proven), Ok(()));
        let mut f = facts(0.99, &[]);
        assert_eq!(holds(proven, &f), Ok(false), "claimed, not proven");
        assert_eq!(holds("claimed.from_agent == 'release-bot'", &f), Ok(true));
        f.sender = "release-bot".into();
        assert_eq!(holds(proven, &f), Ok(true));
        // And at run time the older variable has no from_agent to read.
        assert!(holds("handoff.from_agent == 'release-bot'", &f).is_err());
    }

    #[test]
    fn only_booleans_are_combined_and_the_whole_must_be_one() {
        for (expr, col, says) in [
            (
                "claimed.title && claimed.confidence > 0.1",
                1,
                "an operand of `&&` must be true or false, and this is a string",
            ),
            (
                "claimed.confidence > 0.1 && claimed.title",
                29,
                "an operand of `&&` must be true or false, and this is a string",
            ),
            (
                "claimed.labels || sender == 'a'",
                1,
                "an operand of `||` must be true or false, and this is a list",
            ),
            (
                "!checkpoints",
                2,
                "the operand of `!` must be true or false, and this is an int",
            ),
            (
                "artifacts.all(a, a.size)",
                18,
                "an operand of `&&` must be true or false, and this is an int",
            ),
            (
                "claimed.confidence ? true : false",
                1,
                "the condition of `? :`",
            ),
            ("claimed.confidence", 1, "gives a double, not true or false"),
            ("claimed.title == 1", 1, "never equal"),
            ("claimed.confidence * 2 > 1", 1, "arithmetic"),
            ("nosuch(claimed.title)", 1, "unknown function `nosuch`"),
        ] {
            let err = check(expr).unwrap_err();
            assert!(err.starts_with(&format!("column {col}: ")), "{expr}: {err}");
            assert!(err.contains(says), "{expr}: {err}");
        }
        for fine in [
            "claimed.title != '' && claimed.confidence > 0.1",
            "size(claimed.title) > 0 && claimed.title.startsWith('fix')",
            "artifacts.exists(a, a.path.endsWith('.md')) || checkpoints >= 3",
            "claimed.labels.filter(l, l.startsWith('x')).size() == 0",
            "artifacts.map(a, a.size).all(s, s < 10)",
            "has(claimed.title) && route == 'docs' && workspace in ['w', 'v']",
            "claimed.confidence >= 1 && checkpoints + 1 > 2 && artifacts.exists_one(a, a.sha256 == 'ab')",
        ] {
            assert_eq!(check(fine), Ok(()), "{fine}");
            assert!(holds(fine, &facts(0.5, &[1])).is_ok(), "{fine}");
        }
    }

    #[test]
    fn an_unknown_fact_or_field_is_refused_where_it_is_named() {
        let err = check("claimed.trigger == 'completion' && claimed.confidenc > 0.9").unwrap_err();
        assert!(
            err.starts_with("column 36: unknown fact `claimed.confidenc`"),
            "{err}"
        );
        assert!(err.contains("confidence"), "it lists the fields: {err}");
        let err = check("handoff.confidenc > 0.9").unwrap_err();
        assert!(
            err.starts_with("column 1: unknown fact `handoff.confidenc`"),
            "{err}"
        );
        let err = check("true && sendr == 'x'").unwrap_err();
        assert!(err.starts_with("column 9: unknown fact `sendr`"), "{err}");
        let err = check("artifacts.all(a, a.bytes < 10)").unwrap_err();
        assert!(err.contains("unknown fact `a.bytes`"), "{err}");
    }
}
