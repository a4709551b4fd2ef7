//! Text previews: an artifact's head as lines, cut at a size, a line count and a line length,
//! saying what was cut. Lines are plain text: the template escapes them.

use serde::Serialize;

/// Most bytes of a file shown (and read for a preview).
pub const MAX_BYTES: usize = 256 * 1024;
/// Most lines shown.
pub const MAX_LINES: usize = 2000;
/// Longer lines are cut (a minified file is one line).
pub const MAX_LINE_CHARS: usize = 2000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPreview {
    /// Without line ends; plain text (escape).
    pub lines: Vec<String>,
    /// Bytes that are not UTF-8 are shown as U+FFFD.
    pub lossy: bool,
    /// Something was cut (the notes say what).
    pub truncated: bool,
    /// Plain sentences for the reviewer (escape).
    pub notes: Vec<String>,
}

/// A size for people: "512 bytes", "1.5 KiB", "3.0 MiB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `head` as text: the first bytes of a file of `total` bytes (all of it when they are equal).
pub fn text(head: &[u8], total: u64) -> TextPreview {
    let mut notes = Vec::new();
    let mut shown = &head[..head.len().min(MAX_BYTES)];
    let cut_bytes = (shown.len() as u64) < total;
    if cut_bytes {
        // A character cut by the end of the head is the cut's doing, not the file's.
        if let Err(e) = std::str::from_utf8(shown) {
            if e.error_len().is_none() {
                shown = &shown[..e.valid_up_to()];
            }
        }
        notes.push(format!(
            "showing the first {} of {}; download the file for the rest",
            human_size(shown.len() as u64),
            human_size(total)
        ));
    }
    let text = String::from_utf8_lossy(shown);
    let lossy = matches!(text, std::borrow::Cow::Owned(_));
    if lossy {
        notes.push("not valid UTF-8: the bytes that are not are shown as \u{FFFD}".into());
    }
    let mut lines = Vec::new();
    let mut long = false;
    let mut all = text.split('\n');
    for line in all.by_ref().take(MAX_LINES) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.char_indices().nth(MAX_LINE_CHARS) {
            Some((at, _)) => {
                long = true;
                lines.push(format!("{}\u{2026}", &line[..at]));
            }
            None => lines.push(line.to_string()),
        }
    }
    // A final line end does not start another line.
    if lines.len() < MAX_LINES && lines.last().is_some_and(String::is_empty) && lines.len() > 1 {
        lines.pop();
    }
    let more: usize = all.count();
    let cut_lines = more > 1 || (more == 1 && !text.ends_with('\n'));
    if cut_lines {
        notes.push(format!(
            "showing the first {MAX_LINES} lines; download the file for the rest"
        ));
    }
    if long {
        notes.push(format!(
            "lines longer than {MAX_LINE_CHARS} characters are cut (\u{2026})"
        ));
    }
    TextPreview {
        lines,
        lossy,
        truncated: cut_bytes || cut_lines || long,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_text_is_shown_whole_as_lines() {
        let head = b"one\r\ntwo\n<script>alert(1)</script>\n";
        let p = text(head, head.len() as u64);
        assert_eq!(p.lines, ["one", "two", "<script>alert(1)</script>"]);
        assert!(!p.truncated && !p.lossy && p.notes.is_empty());
        assert_eq!(text(b"", 0).lines, [""]);
        assert_eq!(text(b"no end", 6).lines, ["no end"]);
        assert_eq!(text(b"a\n\n", 3).lines, ["a", ""]);
    }

    #[test]
    fn big_files_are_cut_with_a_note() {
        let big = "x\n".repeat(MAX_BYTES);
        let p = text(&big.as_bytes()[..MAX_BYTES + 1], big.len() as u64);
        assert_eq!(p.lines.len(), MAX_LINES);
        assert!(p.truncated);
        assert_eq!(
            p.notes,
            [
                "showing the first 256.0 KiB of 512.0 KiB; download the file for the rest",
                "showing the first 2000 lines; download the file for the rest"
            ]
        );
        // Exactly MAX_LINES lines is not cut.
        let exact = "y\n".repeat(MAX_LINES);
        let p = text(exact.as_bytes(), exact.len() as u64);
        assert_eq!((p.lines.len(), p.truncated), (MAX_LINES, false));
        let p = text(format!("{exact}z").as_bytes(), exact.len() as u64 + 1);
        assert!(p.truncated);
    }

    #[test]
    fn long_lines_and_bad_utf8_are_said() {
        let line = "\u{e9}".repeat(MAX_LINE_CHARS + 5);
        let p = text(line.as_bytes(), line.len() as u64);
        assert_eq!(p.lines[0].chars().count(), MAX_LINE_CHARS + 1);
        assert!(p.lines[0].ends_with('\u{2026}') && p.truncated);
        let p = text(b"caf\xe9\n", 5);
        assert_eq!(p.lines, ["caf\u{FFFD}"]);
        assert!(p.lossy && p.notes[0].starts_with("not valid UTF-8"));
        // A head cut inside a character is not called invalid.
        let p = text(&"\u{e9}".as_bytes()[..1], 2);
        assert!(!p.lossy && p.truncated);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 20), "3.0 MiB");
    }
}
