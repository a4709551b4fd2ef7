//! Line diffs of two texts (an artifact against its previous revision, or its approved copy),
//! as hunks of typed lines for the template, or as unified-diff text. Bounded: inputs and
//! output are capped, and the diff algorithm has a deadline after which it approximates
//! (a diff of two hostile 1 MiB files must not hold a worker for seconds).

use super::preview::MAX_LINE_CHARS;
use serde::Serialize;
use similar::{Algorithm, ChangeTag, TextDiff};
use std::time::Duration;

/// Most bytes of each side compared.
pub const MAX_INPUT_BYTES: usize = 1 << 20;
/// Most diff lines (context included) returned.
pub const MAX_LINES: usize = 2000;
/// Lines of context around each change.
pub const CONTEXT: usize = 3;
/// After this the algorithm gives up on a minimal diff and answers a correct, longer one.
const DEADLINE: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Context,
    Added,
    Removed,
}

impl LineKind {
    /// The unified-diff prefix: ' ', '+' or '-'.
    pub fn sign(self) -> char {
        match self {
            LineKind::Context => ' ',
            LineKind::Added => '+',
            LineKind::Removed => '-',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffLine {
    pub kind: LineKind,
    /// 1-based line numbers in the old and new text (absent for an added or removed line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<usize>,
    /// Without its line end; plain text (escape).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hunk {
    /// `@@ -1,4 +1,5 @@`
    pub header: String,
    pub lines: Vec<DiffLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineDiff {
    pub hunks: Vec<Hunk>,
    /// Lines added and removed in the whole diff (also past what is shown).
    pub added: usize,
    pub removed: usize,
    /// No difference at all.
    pub identical: bool,
    /// Something was cut (the notes say what).
    pub truncated: bool,
    /// Plain sentences for the reviewer (escape).
    pub notes: Vec<String>,
}

impl LineDiff {
    /// The diff of a content with itself (known equal by digest, so never read).
    pub fn same() -> LineDiff {
        LineDiff {
            hunks: Vec::new(),
            added: 0,
            removed: 0,
            identical: true,
            truncated: false,
            notes: Vec::new(),
        }
    }
}

/// `text` cut to `MAX_INPUT_BYTES` on a character boundary; whether it was cut.
fn capped(text: &str) -> (&str, bool) {
    if text.len() <= MAX_INPUT_BYTES {
        return (text, false);
    }
    let mut end = MAX_INPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

fn range(start: usize, len: usize) -> String {
    // Unified-diff convention: an empty range names the line before it.
    let first = if len == 0 { start } else { start + 1 };
    format!("{first},{len}")
}

fn line_text(value: &str) -> String {
    let line = value.strip_suffix('\n').unwrap_or(value);
    let line = line.strip_suffix('\r').unwrap_or(line);
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((at, _)) => format!("{}\u{2026}", &line[..at]),
        None => line.to_string(),
    }
}

/// The line diff from `old` to `new`.
pub fn diff(old: &str, new: &str) -> LineDiff {
    let mut notes = Vec::new();
    let (old, old_cut) = capped(old);
    let (new, new_cut) = capped(new);
    if old_cut || new_cut {
        notes.push(format!(
            "only the first {} KiB of each side are compared",
            MAX_INPUT_BYTES / 1024
        ));
    }
    let text_diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .timeout(DEADLINE)
        .diff_lines(old, new);
    let (mut hunks, mut added, mut removed, mut shown) = (Vec::new(), 0, 0, 0);
    let mut cut = false;
    for group in text_diff.grouped_ops(CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let (old_from, new_from) = (first.old_range().start, first.new_range().start);
        let header = format!(
            "@@ -{} +{} @@",
            range(old_from, last.old_range().end - old_from),
            range(new_from, last.new_range().end - new_from)
        );
        let mut lines = Vec::new();
        for op in &group {
            for change in text_diff.iter_changes(op) {
                let kind = match change.tag() {
                    ChangeTag::Equal => LineKind::Context,
                    ChangeTag::Insert => {
                        added += 1;
                        LineKind::Added
                    }
                    ChangeTag::Delete => {
                        removed += 1;
                        LineKind::Removed
                    }
                };
                if shown >= MAX_LINES {
                    cut = true;
                    continue;
                }
                shown += 1;
                lines.push(DiffLine {
                    kind,
                    old: change.old_index().map(|i| i + 1),
                    new: change.new_index().map(|i| i + 1),
                    text: line_text(change.value()),
                });
            }
        }
        if !lines.is_empty() {
            hunks.push(Hunk { header, lines });
        }
    }
    if cut {
        notes.push(format!("showing the first {MAX_LINES} lines of the diff"));
    }
    if old.ends_with('\n') != new.ends_with('\n') && !old.is_empty() && !new.is_empty() {
        let which = if old.ends_with('\n') { "new" } else { "old" };
        notes.push(format!(
            "the {which} text has no line end after its last line"
        ));
    }
    LineDiff {
        identical: added == 0 && removed == 0,
        hunks,
        added,
        removed,
        truncated: cut || old_cut || new_cut,
        notes,
    }
}

/// The diff as unified-diff text (for a plain-text view or a download).
pub fn unified(diff: &LineDiff, old_label: &str, new_label: &str) -> String {
    let mut out = format!("--- {old_label}\n+++ {new_label}\n");
    for hunk in &diff.hunks {
        out.push_str(&hunk.header);
        out.push('\n');
        for line in &hunk.lines {
            out.push(line.kind.sign());
            out.push_str(&line.text);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_one_hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\n";
        let d = diff(old, new);
        assert_eq!((d.added, d.removed, d.identical), (2, 1, false));
        assert_eq!(
            unified(&d, "rev-1/x.txt", "rev-2/x.txt"),
            "--- rev-1/x.txt\n+++ rev-2/x.txt\n@@ -2,7 +2,8 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n+i\n"
        );
        let e = &d.hunks[0].lines[3];
        assert_eq!(
            (e.kind, e.old, e.new, e.text.as_str()),
            (LineKind::Removed, Some(5), None, "e")
        );
        assert!(d.notes.is_empty() && !d.truncated);
    }

    #[test]
    fn identical_texts_have_no_hunks() {
        let d = diff("same\n", "same\n");
        assert!(d.identical && d.hunks.is_empty());
        let d = diff("", "new file\n");
        assert_eq!(
            unified(&d, "a", "b"),
            "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+new file\n"
        );
    }

    #[test]
    fn hostile_lines_stay_plain_text() {
        let d = diff("<b>\n", "<script>alert(1)</script>\n");
        assert_eq!(d.hunks[0].lines[1].text, "<script>alert(1)</script>");
    }

    #[test]
    fn big_diffs_are_cut_with_a_note() {
        let old: String = (0..5000).map(|i| format!("old {i}\n")).collect();
        let new: String = (0..5000).map(|i| format!("new {i}\n")).collect();
        let d = diff(&old, &new);
        let shown: usize = d.hunks.iter().map(|h| h.lines.len()).sum();
        assert_eq!(shown, MAX_LINES);
        assert_eq!((d.added, d.removed, d.truncated), (5000, 5000, true));
        assert_eq!(d.notes, ["showing the first 2000 lines of the diff"]);
        let d = diff("x\n", "x");
        assert_eq!(
            d.notes,
            ["the new text has no line end after its last line"]
        );
    }
}
