//! The static check of a policy expression, run when the configuration is loaded: a simple type
//! inference over the parsed CEL against the facts baton gives it (`super::FACTS`). An
//! expression that names a fact that is not there (a typo), applies `&&`, `||`, `!` or `?:` to
//! something that is not true or false, compares what can never compare, calls a function
//! baton does not give, or does not give true or false as a whole, is refused, so that what
//! the daemon runs can only fail on what cannot be known before (none of the facts can).

use cel_interpreter::IdedExpr;
use cel_parser::ast::operators as op;
use cel_parser::ast::{EntryExpr, Expr};
use cel_parser::reference::Val;
use std::collections::HashMap;

/// A type an expression may have.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ty {
    Bool,
    Int,
    UInt,
    Double,
    Str,
    Bytes,
    Null,
    List(Box<Ty>),
    Map(Box<Ty>),
    /// A fact with named fields (`claimed`, an artifact).
    Record(&'static Schema),
    /// Not known before it runs (an empty list's elements, a map's mixed values).
    Dyn,
}

/// Named facts or fields, each with (a function giving) its type.
pub(super) type Fields = &'static [(&'static str, fn() -> Ty)];

/// The fields of a record fact, each with its type.
#[derive(Debug, PartialEq)]
pub(super) struct Schema {
    /// How the record is named in a message (`claimed`, `artifact`).
    pub name: &'static str,
    pub fields: Fields,
    /// Fields that are refused with a message of their own (a claim that reads like proof).
    pub refused: &'static [(&'static str, &'static str)],
}

/// Why an expression is refused, and the text of the source it is about (to find its column).
#[derive(Debug)]
pub(super) struct Refusal {
    pub msg: String,
    /// The path (`claimed.title`) or word that the refusal is about, as segments.
    pub at: Vec<String>,
}

impl Ty {
    /// How a message names the type.
    pub fn describe(&self) -> String {
        self.name()
    }

    fn name(&self) -> String {
        match self {
            Ty::Bool => "a boolean".into(),
            Ty::Int => "an int".into(),
            Ty::UInt => "a uint".into(),
            Ty::Double => "a double".into(),
            Ty::Str => "a string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Null => "null".into(),
            Ty::List(_) => "a list".into(),
            Ty::Map(_) => "a map".into(),
            Ty::Record(s) => format!("{} (a record)", s.name),
            Ty::Dyn => "a value whose type is not known before it runs".into(),
        }
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::UInt | Ty::Double)
    }

    /// Whether values of the two types can ever be equal (or be ordered, for `<`).
    fn comparable(&self, other: &Ty) -> bool {
        match (self, other) {
            (Ty::Dyn, _) | (_, Ty::Dyn) => true,
            (a, b) if a.numeric() && b.numeric() => true,
            (Ty::List(a), Ty::List(b)) | (Ty::Map(a), Ty::Map(b)) => a.comparable(b),
            (Ty::Record(_), Ty::Map(_)) | (Ty::Map(_), Ty::Record(_)) => true,
            (a, b) => a == b,
        }
    }

    /// The type of a value that is either.
    fn join(self, other: Ty) -> Ty {
        match (self, other) {
            (Ty::Dyn, t) | (t, Ty::Dyn) => t,
            (Ty::List(a), Ty::List(b)) => Ty::List(Box::new(a.join(*b))),
            (a, b) if a == b => a,
            _ => Ty::Dyn,
        }
    }
}

/// The scope an expression is checked in: the facts, and the variables of the comprehensions
/// (`all`, `exists`, ...) around it.
pub(super) struct Scope {
    pub facts: Fields,
    vars: HashMap<String, Ty>,
}

impl Scope {
    pub fn new(facts: Fields) -> Self {
        Scope {
            facts,
            vars: HashMap::new(),
        }
    }

    /// The type of `e`, or why it is refused.
    pub fn infer(&mut self, e: &IdedExpr) -> Result<Ty, Refusal> {
        match &e.expr {
            Expr::Literal(v) => Ok(match v {
                Val::String(_) => Ty::Str,
                Val::Boolean(_) => Ty::Bool,
                Val::Int(_) => Ty::Int,
                Val::UInt(_) => Ty::UInt,
                Val::Double(_) => Ty::Double,
                Val::Bytes(_) => Ty::Bytes,
                Val::Null => Ty::Null,
            }),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => {
                let operand = self.infer(&s.operand)?;
                let field = self.field(&operand, &s.field, &s.operand)?;
                Ok(if s.test { Ty::Bool } else { field })
            }
            Expr::List(l) => {
                let mut elem = Ty::Dyn;
                for x in &l.elements {
                    let t = self.infer(x)?;
                    elem = elem.join(t);
                }
                Ok(Ty::List(Box::new(elem)))
            }
            Expr::Map(m) => {
                let mut value = Ty::Dyn;
                for entry in &m.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        return Err(refuse("a message literal is not supported", e));
                    };
                    let key = self.infer(&entry.key)?;
                    if !matches!(key, Ty::Str | Ty::Int | Ty::UInt | Ty::Bool | Ty::Dyn) {
                        return Err(refuse(
                            format!(
                                "a map key must be a string, int, uint or bool, not {}",
                                key.name()
                            ),
                            &entry.key,
                        ));
                    }
                    let t = self.infer(&entry.value)?;
                    value = value.join(t);
                }
                Ok(Ty::Map(Box::new(value)))
            }
            Expr::Comprehension(c) => {
                let range = self.infer(&c.iter_range)?;
                let elem = match range {
                    Ty::List(t) => *t,
                    Ty::Map(_) | Ty::Record(_) => Ty::Str,
                    Ty::Dyn => Ty::Dyn,
                    other => {
                        return Err(refuse(
                            format!(
                                "{} cannot be iterated over (only a list or a map)",
                                other.name()
                            ),
                            &c.iter_range,
                        ))
                    }
                };
                let saved_iter = self.vars.insert(c.iter_var.clone(), elem);
                let init = self.infer(&c.accu_init)?;
                let saved_accu = self.vars.insert(c.accu_var.clone(), init.clone());
                self.infer(&c.loop_cond)?;
                let step = self.infer(&c.loop_step)?;
                self.vars.insert(c.accu_var.clone(), init.join(step));
                let result = self.infer(&c.result);
                restore(&mut self.vars, &c.accu_var, saved_accu);
                restore(&mut self.vars, &c.iter_var, saved_iter);
                result
            }
            Expr::Call(call) => self.call(e, call),
            Expr::Struct(_) => Err(refuse("a message literal is not supported", e)),
            Expr::Unspecified => Err(refuse("not a complete expression", e)),
        }
    }

    fn ident(&self, name: &str) -> Result<Ty, Refusal> {
        if let Some(t) = self.vars.get(name) {
            return Ok(t.clone());
        }
        if let Some((_, t)) = self.facts.iter().find(|(n, _)| *n == name) {
            return Ok(t());
        }
        let known: Vec<&str> = self.facts.iter().map(|(n, _)| *n).collect();
        Err(Refusal {
            msg: format!("unknown fact `{name}` (the facts are {})", known.join(", ")),
            at: vec![name.to_string()],
        })
    }

    /// The type of `operand.field` (`of` is the operand's expression, for the message).
    fn field(&self, operand: &Ty, field: &str, of: &IdedExpr) -> Result<Ty, Refusal> {
        match operand {
            Ty::Record(schema) => match schema.fields.iter().find(|(n, _)| *n == field) {
                Some((_, t)) => Ok(t()),
                None if schema.refused.iter().any(|(n, _)| *n == field) => {
                    let (_, why) = schema.refused.iter().find(|(n, _)| *n == field).unwrap();
                    let mut at = path(of);
                    at.push(field.to_string());
                    Err(Refusal {
                        msg: why.to_string(),
                        at,
                    })
                }
                None => {
                    let mut at = path(of);
                    at.push(field.to_string());
                    let known: Vec<&str> = schema.fields.iter().map(|(n, _)| *n).collect();
                    Err(Refusal {
                        msg: format!(
                            "unknown fact `{}` ({} has {})",
                            at.join("."),
                            schema.name,
                            known.join(", ")
                        ),
                        at,
                    })
                }
            },
            Ty::Map(value) => Ok((**value).clone()),
            Ty::Dyn => Ok(Ty::Dyn),
            other => {
                let mut at = path(of);
                at.push(field.to_string());
                Err(Refusal {
                    msg: format!("`{}`: {} has no fields", at.join("."), other.name()),
                    at,
                })
            }
        }
    }

    /// A boolean operand: refused unless it is one (CEL's own rule; the interpreter would
    /// take a non-empty string or a non-zero number as true).
    fn boolean(&mut self, e: &IdedExpr, what: &str) -> Result<(), Refusal> {
        match self.infer(e)? {
            Ty::Bool => Ok(()),
            other => Err(refuse(
                format!("{what} must be true or false, and this is {}", other.name()),
                e,
            )),
        }
    }

    fn call(&mut self, e: &IdedExpr, call: &cel_parser::ast::CallExpr) -> Result<Ty, Refusal> {
        let name = call.func_name.as_str();
        let args = &call.args;
        match (name, args.len(), &call.target) {
            (op::LOGICAL_AND | op::LOGICAL_OR, 2, None) => {
                let what = if name == op::LOGICAL_AND {
                    "an operand of `&&`"
                } else {
                    "an operand of `||`"
                };
                self.boolean(&args[0], what)?;
                self.boolean(&args[1], what)?;
                Ok(Ty::Bool)
            }
            (op::LOGICAL_NOT, 1, None) => {
                self.boolean(&args[0], "the operand of `!`")?;
                Ok(Ty::Bool)
            }
            (op::NOT_STRICTLY_FALSE, 1, None) => {
                self.infer(&args[0])?;
                Ok(Ty::Bool)
            }
            (op::CONDITIONAL, 3, None) => {
                self.boolean(&args[0], "the condition of `? :`")?;
                let a = self.infer(&args[1])?;
                let b = self.infer(&args[2])?;
                Ok(a.join(b))
            }
            (op::EQUALS | op::NOT_EQUALS, 2, None) => {
                let (a, b) = (self.infer(&args[0])?, self.infer(&args[1])?);
                if !a.comparable(&b) {
                    return Err(refuse(
                        format!("compares {} with {}: never equal", a.name(), b.name()),
                        &args[0],
                    ));
                }
                Ok(Ty::Bool)
            }
            (op::LESS | op::LESS_EQUALS | op::GREATER | op::GREATER_EQUALS, 2, None) => {
                let (a, b) = (self.infer(&args[0])?, self.infer(&args[1])?);
                let ordered = |t: &Ty| t.numeric() || matches!(t, Ty::Str | Ty::Bool | Ty::Dyn);
                if !(ordered(&a) && ordered(&b) && a.comparable(&b)) {
                    return Err(refuse(
                        format!(
                            "orders {} against {}: they do not compare",
                            a.name(),
                            b.name()
                        ),
                        &args[0],
                    ));
                }
                Ok(Ty::Bool)
            }
            (op::IN, 2, None) => {
                let (a, b) = (self.infer(&args[0])?, self.infer(&args[1])?);
                let fits = match &b {
                    Ty::List(elem) => a.comparable(elem),
                    Ty::Map(_) | Ty::Record(_) => {
                        matches!(a, Ty::Str | Ty::Int | Ty::UInt | Ty::Bool | Ty::Dyn)
                    }
                    Ty::Str => matches!(a, Ty::Str | Ty::Dyn),
                    Ty::Dyn => true,
                    _ => false,
                };
                if !fits {
                    return Err(refuse(
                        format!("`in` looks for {} in {}", a.name(), b.name()),
                        &args[0],
                    ));
                }
                Ok(Ty::Bool)
            }
            (op::ADD, 2, None) => {
                let (a, b) = (self.infer(&args[0])?, self.infer(&args[1])?);
                match (&a, &b) {
                    (Ty::List(_), Ty::List(_)) => Ok(a.join(b)),
                    (Ty::Dyn, t) | (t, Ty::Dyn) => Ok(t.clone()),
                    (x, y)
                        if x == y
                            && matches!(
                                x,
                                Ty::Int | Ty::UInt | Ty::Double | Ty::Str | Ty::Bytes
                            ) =>
                    {
                        Ok(a)
                    }
                    _ => Err(refuse(
                        format!("adds {} and {}", a.name(), b.name()),
                        &args[0],
                    )),
                }
            }
            (op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO, 2, None) => {
                let (a, b) = (self.infer(&args[0])?, self.infer(&args[1])?);
                match (&a, &b) {
                    (Ty::Dyn, t) | (t, Ty::Dyn) if t.numeric() || *t == Ty::Dyn => Ok(t.clone()),
                    (x, y)
                        if x == y && x.numeric() && !(name == op::MODULO && *x == Ty::Double) =>
                    {
                        Ok(a)
                    }
                    _ => Err(refuse(
                        format!(
                            "arithmetic on {} and {} (both sides must be the same kind of number)",
                            a.name(),
                            b.name()
                        ),
                        &args[0],
                    )),
                }
            }
            (op::NEGATE, 1, None) => match self.infer(&args[0])? {
                t @ (Ty::Int | Ty::Double | Ty::Dyn) => Ok(t),
                other => Err(refuse(format!("negates {}", other.name()), &args[0])),
            },
            (op::INDEX, 2, None) => {
                let (a, b) = (self.infer(&args[0])?, self.infer(&args[1])?);
                match (&a, &b) {
                    (Ty::List(elem), Ty::Int | Ty::Dyn) => Ok((**elem).clone()),
                    (Ty::Str, Ty::Int | Ty::Dyn) => Ok(Ty::Str),
                    (Ty::Map(value), _) => Ok((**value).clone()),
                    (Ty::Record(_), Ty::Str) => match &args[1].expr {
                        Expr::Literal(Val::String(field)) => self.field(&a, field, &args[0]),
                        _ => Ok(Ty::Dyn),
                    },
                    (Ty::Dyn, _) => Ok(Ty::Dyn),
                    _ => Err(refuse(
                        format!("indexes {} with {}", a.name(), b.name()),
                        &args[0],
                    )),
                }
            }
            _ => self.function(e, call),
        }
    }

    /// A function call (`size(x)`, `x.startsWith(y)`, ...): only those the daemon gives.
    fn function(&mut self, e: &IdedExpr, call: &cel_parser::ast::CallExpr) -> Result<Ty, Refusal> {
        let name = call.func_name.as_str();
        let mut args = Vec::new();
        if let Some(target) = &call.target {
            args.push(self.infer(target)?);
        }
        for a in &call.args {
            args.push(self.infer(a)?);
        }
        let wrong = |why: &str| Err(refuse(format!("`{name}`: {why}"), e));
        match name {
            "size" => match args.as_slice() {
                [Ty::Str | Ty::Bytes | Ty::List(_) | Ty::Map(_) | Ty::Dyn] => Ok(Ty::Int),
                _ => wrong("takes one string, bytes, list or map"),
            },
            "contains" => match args.as_slice() {
                [Ty::Str, Ty::Str | Ty::Dyn] | [Ty::Dyn, _] => Ok(Ty::Bool),
                [Ty::List(elem), x] if x.comparable(elem) => Ok(Ty::Bool),
                _ => wrong("is `string.contains(string)` or `list.contains(element)`"),
            },
            "startsWith" | "endsWith" => match args.as_slice() {
                [Ty::Str | Ty::Dyn, Ty::Str | Ty::Dyn] if call.target.is_some() => Ok(Ty::Bool),
                _ => wrong("is `string.startsWith(string)` / `string.endsWith(string)`"),
            },
            "max" | "min" => {
                let mut all = args.into_iter().flat_map(|t| match t {
                    Ty::List(elem) => vec![*elem],
                    t => vec![t],
                });
                let first = all.next().unwrap_or(Ty::Dyn);
                let same = all.try_fold(first, |acc, t| match acc {
                    a if a == t || t == Ty::Dyn => Some(a),
                    Ty::Dyn => Some(t),
                    _ => None,
                });
                match same {
                    Some(t) if t.numeric() || t == Ty::Dyn => Ok(t),
                    _ => wrong("takes numbers of one kind"),
                }
            }
            "string" | "int" | "uint" | "double" | "bytes" if args.len() == 1 => Ok(match name {
                "string" => Ty::Str,
                "int" => Ty::Int,
                "uint" => Ty::UInt,
                "double" => Ty::Double,
                _ => Ty::Bytes,
            }),
            _ => Err(Refusal {
                msg: format!(
                    "unknown function `{name}` (baton gives size, contains, startsWith, endsWith, \
                     max, min, string, int, uint, double, bytes and the macros has, all, exists, \
                     exists_one, map, filter)"
                ),
                at: vec![name.to_string()],
            }),
        }
    }
}

fn restore(vars: &mut HashMap<String, Ty>, name: &str, saved: Option<Ty>) {
    match saved {
        Some(t) => vars.insert(name.to_string(), t),
        None => vars.remove(name),
    };
}

fn refuse(msg: impl Into<String>, at: &IdedExpr) -> Refusal {
    Refusal {
        msg: msg.into(),
        at: anchor(at),
    }
}

/// `a.b.c` of a select chain over an identifier, as segments; empty for anything else.
fn path(e: &IdedExpr) -> Vec<String> {
    match &e.expr {
        Expr::Ident(n) => vec![n.clone()],
        Expr::Select(s) if !s.test => {
            let mut p = path(&s.operand);
            if !p.is_empty() {
                p.push(s.field.clone());
            }
            p
        }
        _ => Vec::new(),
    }
}

/// The text an expression starts with, to find it in the source: its path, or the leftmost
/// part of it that has one (or a literal's text, a function's name).
fn anchor(e: &IdedExpr) -> Vec<String> {
    let p = path(e);
    if !p.is_empty() {
        return p;
    }
    match &e.expr {
        Expr::Select(s) => anchor(&s.operand),
        Expr::Call(c) => match (&c.target, c.args.first()) {
            (Some(t), _) => anchor(t),
            (None, Some(first)) if c.func_name.starts_with('_') || c.func_name.starts_with('@') => {
                anchor(first)
            }
            (None, _) if c.func_name == op::LOGICAL_NOT || c.func_name == op::NEGATE => {
                c.args.first().map(anchor).unwrap_or_default()
            }
            _ => vec![c.func_name.clone()],
        },
        Expr::Comprehension(c) => anchor(&c.iter_range),
        Expr::Literal(v) => vec![match v {
            Val::String(s) => s.clone(),
            Val::Boolean(b) => b.to_string(),
            Val::Int(i) => i.to_string(),
            Val::UInt(u) => u.to_string(),
            Val::Double(d) => d.to_string(),
            Val::Bytes(_) | Val::Null => "null".into(),
        }],
        _ => Vec::new(),
    }
}

/// The column (from 1) where the path `at` first appears in `source` as words (`a . b`
/// matches `a.b`); 1 when it cannot be found.
pub(super) fn column(source: &str, at: &[String]) -> usize {
    let bytes = source.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let Some(first) = at.first().filter(|f| !f.is_empty()) else {
        return 1;
    };
    let mut from = 0;
    while let Some(found) = source[from..].find(first.as_str()) {
        let start = from + found;
        from = start + first.len().max(1);
        let bounded_before = start == 0 || !word(bytes[start - 1]) || !word(first.as_bytes()[0]);
        if !bounded_before {
            continue;
        }
        let mut i = start + first.len();
        let mut ok = true;
        for seg in &at[1..] {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if bytes.get(i) != Some(&b'.') {
                ok = false;
                break;
            }
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if !source[i..].starts_with(seg.as_str()) {
                ok = false;
                break;
            }
            i += seg.len();
        }
        let bounded_after = i >= bytes.len()
            || !word(bytes[i])
            || !at
                .last()
                .is_some_and(|l| l.bytes().last().is_some_and(word));
        if ok && bounded_after {
            return source[..start].chars().count() + 1;
        }
    }
    1
}
