//! A reviewer's edits in a decision request (`instructions`, an edited `remaining`): checked
//! and tidied before anything is looked up, so every path (API, page, bulk, MCP) keeps the
//! same rules.

use crate::app::model::DecideError;
use crate::contract::decision::Edits;
use crate::contract::request::decision::{MAX_INSTRUCTIONS as MAX_TEXT, MAX_ITEM, MAX_ITEMS};
use crate::contract::Outcome;

/// The limits of the edits as sent, before any tidying: the ones the schema publishes.
pub(in crate::app) fn check_limits(edits: &Edits) -> Result<(), DecideError> {
    let bad = |m: String| Err(DecideError::Unprocessable(m));
    if edits
        .instructions
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TEXT)
    {
        return bad(format!("instructions are over {MAX_TEXT} characters"));
    }
    let items = edits.remaining.as_deref().unwrap_or_default();
    if items.len() > MAX_ITEMS {
        return bad(format!(
            "remaining has {} items; at most {MAX_ITEMS}",
            items.len()
        ));
    }
    if let Some(i) = items.iter().position(|i| i.chars().count() > MAX_ITEM) {
        return bad(format!("remaining/{i} is over {MAX_ITEM} characters"));
    }
    Ok(())
}

/// The edits to record: blank instructions are none, `remaining` items are trimmed and blank
/// ones dropped (a form's textarea sends one item a line).
pub(in crate::app) fn checked(outcome: Outcome, edits: Edits) -> Result<Edits, DecideError> {
    check_limits(&edits)?;
    let instructions = edits.instructions.filter(|t| !t.trim().is_empty());
    let remaining = edits.remaining.map(|items| {
        items
            .iter()
            .map(|i| i.trim().to_string())
            .filter(|i| !i.is_empty())
            .collect::<Vec<_>>()
    });
    let edits = Edits {
        instructions,
        remaining,
    };
    if edits.is_empty() {
        return Ok(edits);
    }
    if !matches!(outcome, Outcome::Approved | Outcome::ChangesRequested) {
        return Err(DecideError::Unprocessable(format!(
            "instructions and remaining are edits the agent follows: send them with outcome \"approved\" or \"changes_requested\", not \"{}\"",
            outcome.as_str()
        )));
    }
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(instructions: Option<&str>, remaining: Option<&[&str]>) -> Edits {
        Edits {
            instructions: instructions.map(str::to_string),
            remaining: remaining.map(|r| r.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn blanks_are_no_edit_and_items_are_trimmed() {
        let e = checked(
            Outcome::Approved,
            edits(Some("  "), Some(&[" a ", "", "b"])),
        )
        .unwrap();
        assert_eq!(e, edits(None, Some(&["a", "b"])));
        let none = checked(Outcome::Rejected, edits(Some(""), None)).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn an_empty_remaining_is_kept_it_says_nothing_remains() {
        let e = checked(Outcome::ChangesRequested, edits(None, Some(&[]))).unwrap();
        assert_eq!(e.remaining, Some(vec![]));
    }

    #[test]
    fn edits_are_refused_with_outcomes_that_end_the_work() {
        for outcome in [Outcome::Rejected, Outcome::Reassigned] {
            let e = checked(outcome, edits(Some("do x"), None)).unwrap_err();
            assert!(e.to_string().contains("approved"), "{e}");
        }
    }

    #[test]
    fn oversized_edits_are_refused() {
        let long = "x".repeat(MAX_TEXT + 1);
        assert!(checked(Outcome::Approved, edits(Some(&long), None)).is_err());
        let long_item = "x".repeat(MAX_ITEM + 1);
        assert!(checked(Outcome::Approved, edits(None, Some(&[long_item.as_str()]))).is_err());
        // Counted as sent: spaces trimmed later still count, and characters, not bytes.
        let padded = format!("{}x", " ".repeat(MAX_ITEM));
        assert!(checked(Outcome::Approved, edits(None, Some(&[padded.as_str()]))).is_err());
        let wide = "é".repeat(MAX_ITEM);
        assert!(checked(Outcome::Approved, edits(None, Some(&[wide.as_str()]))).is_ok());
        let many = vec!["a"; MAX_ITEMS + 1];
        assert!(checked(Outcome::Approved, edits(None, Some(&many))).is_err());
    }
}
