//! One thing wrong with a contract file: where (JSON pointer, line:column) and what, in words.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validation or parse problem. `pointer` is an RFC 6901 JSON pointer into the file
/// (`""` is the whole document); `line`/`column` are 1-based when the position is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl Problem {
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            pointer: pointer.into(),
            message: message.into(),
            line: None,
            column: None,
        }
    }

    pub fn at(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
}

impl fmt::Display for Problem {
    /// `POINTER LINE:COLUMN: MESSAGE`, the one-line form `baton validate` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(document)"
        } else {
            &self.pointer
        };
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{pointer} {l}:{c}: {}", self.message),
            _ => write!(f, "{pointer} -: {}", self.message),
        }
    }
}

/// Appends one segment to a JSON pointer, escaping `~` and `/` as RFC 6901 says.
pub fn push_pointer(base: &str, segment: &str) -> String {
    let escaped = segment.replace('~', "~0").replace('/', "~1");
    format!("{base}/{escaped}")
}

/// Splits a JSON pointer into its unescaped segments.
pub fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}
