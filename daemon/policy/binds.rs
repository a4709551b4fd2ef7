//! Whether a policy approves only proven senders: its expression must be false whenever
//! `sender` is `""` (no agent proven to have sent the revision), whatever the other facts. A
//! policy that can hold without a proven sender approves whatever any writer of the share
//! writes under any name, so it is refused at load unless its route opts in (see
//! `config` checks and `Route::auto_approve_unproven`).
//!
//! Decided on the parsed expression, conservatively: only the shapes below prove it, and
//! anything else counts as "may hold without a proven sender" (refused by default). A
//! proving condition is `sender == 'x'`, `sender in ['x', 'y']`, `sender != ''`,
//! `sender.startsWith('x')` (or `endsWith`, `contains`) with non-empty literals, or `false`;
//! `a && b` is proving when either side is, `a || b` and `c ? a : b` when both branches are, and
//! `!a` when `a` holds whenever `sender` is `""` (`sender == ''`, `sender != 'x'`, `true`, and
//! the same shapes).

use cel_interpreter::IdedExpr;
use cel_parser::ast::operators as op;
use cel_parser::ast::Expr;
use cel_parser::reference::Val;

/// Whether `expr` is false whenever no sender is proven (see the module). An expression
/// that does not parse proves nothing (the load-time check refuses it on its own).
pub fn binds_sender(expr: &str) -> bool {
    let parsed = std::panic::catch_unwind(|| cel_parser::Parser::default().parse(expr));
    match parsed {
        Ok(Ok(ast)) => false_unproven(&ast),
        _ => false,
    }
}

/// Whether `e` is false whenever `sender` is `""`.
fn false_unproven(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(Val::Boolean(false)) => true,
        Expr::Call(c) => match (c.func_name.as_str(), c.args.as_slice(), &c.target) {
            (op::LOGICAL_AND, [a, b], None) => false_unproven(a) || false_unproven(b),
            (op::LOGICAL_OR, [a, b], None) => false_unproven(a) && false_unproven(b),
            (op::CONDITIONAL, [_, a, b], None) => false_unproven(a) && false_unproven(b),
            (op::LOGICAL_NOT, [a], None) => true_unproven(a),
            (op::EQUALS, [a, b], None) => sender_and(a, b, |s| !s.is_empty()),
            (op::NOT_EQUALS, [a, b], None) => sender_and(a, b, str::is_empty),
            (op::IN, [a, list], None) => {
                is_sender(a)
                    && matches!(&list.expr, Expr::List(l) if l.elements.iter().all(|x| {
                        literal(x).is_some_and(|s| !s.is_empty())
                    }))
            }
            ("startsWith" | "endsWith" | "contains", [arg], Some(target)) => {
                is_sender(target) && literal(arg).is_some_and(|s| !s.is_empty())
            }
            _ => false,
        },
        _ => false,
    }
}

/// Whether `e` is true whenever `sender` is `""` (what `!` turns into a proving condition).
fn true_unproven(e: &IdedExpr) -> bool {
    match &e.expr {
        Expr::Literal(Val::Boolean(true)) => true,
        Expr::Call(c) => match (c.func_name.as_str(), c.args.as_slice(), &c.target) {
            (op::LOGICAL_AND, [a, b], None) => true_unproven(a) && true_unproven(b),
            (op::LOGICAL_OR, [a, b], None) => true_unproven(a) || true_unproven(b),
            (op::CONDITIONAL, [_, a, b], None) => true_unproven(a) && true_unproven(b),
            (op::LOGICAL_NOT, [a], None) => false_unproven(a),
            (op::EQUALS, [a, b], None) => sender_and(a, b, str::is_empty),
            (op::NOT_EQUALS, [a, b], None) => sender_and(a, b, |s| !s.is_empty()),
            _ => false,
        },
        _ => false,
    }
}

/// Whether one of `a`, `b` is `sender` and the other a string literal that `fits`.
fn sender_and(a: &IdedExpr, b: &IdedExpr, fits: impl Fn(&str) -> bool) -> bool {
    let pair = |s: &IdedExpr, l: &IdedExpr| is_sender(s) && literal(l).is_some_and(&fits);
    pair(a, b) || pair(b, a)
}

fn is_sender(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Ident(name) if name == "sender")
}

fn literal(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(Val::String(s)) => Some(s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::binds_sender;

    #[test]
    fn only_an_expression_false_without_a_proven_sender_binds_it() {
        for proving in [
            "sender == 'release-bot'",
            "'release-bot' == sender && claimed.confidence >= 0.9",
            "claimed.confidence >= 0.9 && sender in ['a', 'b']",
            "sender != '' && artifacts.all(a, a.size < 10)",
            "sender.startsWith('ci-') && claimed.trigger == 'completion'",
            "(sender == 'a' || sender == 'b') && checkpoints > 1",
            "!(sender == '') && true",
            "claimed.labels.exists(l, l == 'x') ? sender == 'a' : sender == 'b'",
        ] {
            assert!(binds_sender(proving), "{proving}");
        }
        for open in [
            "claimed.confidence >= 0.97",
            "sender == '' || sender == 'a'",
            "sender == 'a' || claimed.confidence > 0.99",
            "sender in ['a', '']",
            "sender in ['a'] == true",
            "claimed.from_agent == 'release-bot'",
            "sender.matches('.*')",
            "size(sender) >= 0",
            "!(sender == 'a')",
            "artifacts.exists(sender, sender.path == 'x')",
            "not an expression (",
        ] {
            assert!(!binds_sender(open), "{open}");
        }
    }
}
