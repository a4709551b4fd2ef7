//! The handoff page's decision form as posted: the comment and the reviewer's edits. The
//! `remaining` textarea comes filled with the handoff's own list (one item a line) and a hidden
//! copy of it; only a list the reviewer changed is sent as an edit.

use super::forms::Form;
use baton::contract::decision::Edits;

/// What the reviewer typed, kept to show the form again when the decision is refused.
#[derive(Default)]
pub struct Draft {
    pub comment: String,
    pub instructions: String,
    /// The `remaining` textarea as posted; `None` shows the handoff's own list.
    pub remaining: Option<String>,
    /// Whether the reviewer changed the `remaining` list.
    pub remaining_edited: bool,
}

impl Draft {
    pub fn read(form: &Form) -> Draft {
        let remaining = form.get("remaining").map(|r| r.replace("\r\n", "\n"));
        let was = form.get("remaining_was").map(|r| r.replace("\r\n", "\n"));
        let remaining_edited = match (&remaining, &was) {
            (Some(now), Some(was)) => items(now) != items(was),
            // Posted without the page's hidden copy (a script): the list is the answer.
            (Some(_), None) => true,
            (None, _) => false,
        };
        Draft {
            comment: form.get("comment").unwrap_or_default().to_string(),
            instructions: form.get("instructions").unwrap_or_default().to_string(),
            remaining,
            remaining_edited,
        }
    }

    pub fn comment(&self) -> Option<String> {
        Some(self.comment.trim().to_string()).filter(|c| !c.is_empty())
    }

    /// The edits to send; `Cx::decide` checks and tidies them like the API's.
    pub fn edits(&self) -> Edits {
        Edits {
            instructions: Some(self.instructions.trim().to_string()).filter(|t| !t.is_empty()),
            remaining: match self.remaining_edited {
                true => self.remaining.as_deref().map(items),
                false => None,
            },
        }
    }
}

/// One item a line, blank lines dropped.
fn items(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(body: &str) -> Draft {
        Draft::read(&Form::parse(body.as_bytes()))
    }

    #[test]
    fn an_unchanged_list_is_no_edit() {
        let d = draft("remaining=a%0D%0Ab%0D%0A&remaining_was=a%0Ab");
        assert_eq!(d.edits(), Edits::default());
    }

    #[test]
    fn a_changed_or_emptied_list_is_the_edit() {
        let d = draft("remaining=a%0D%0Ac&remaining_was=a%0Ab&instructions=+do+c+");
        assert_eq!(d.edits().remaining, Some(vec!["a".into(), "c".into()]));
        assert_eq!(d.edits().instructions.as_deref(), Some("do c"));
        let d = draft("remaining=&remaining_was=a");
        assert_eq!(d.edits().remaining, Some(vec![]));
    }
}
