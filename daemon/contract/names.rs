//! The names the API takes in (paths in a workspace, checkpoint file names, one-line names
//! such as a lock's owner or a reassignment's `to_agent`): each rule is written twice, once
//! as the check the daemon runs and once as the JSON Schema `pattern` the OpenAPI document
//! publishes, side by side here so they say the same thing. Schema generators (schemathesis)
//! hold the two to each other: a string the pattern admits must be taken, one it refuses
//! must be refused.
//!
//! Patterns use only what ECMA-262 and Python's `re` read alike: character classes with
//! `\xNN`/`\uNNNN` escapes, groups, alternation, `*`/`+`/`?`; no lookaround, no `\s` (its
//! sets differ between them and from Rust's `char::is_whitespace`).

use super::validate::relative_path_problem;

/// The daemon's own folder in a workspace, out of agents' reach (`workspace::BATON_DIR`).
pub const BATON_DIR: &str = ".baton";

/// Control characters (Unicode `Cc`, what `char::is_control` is true for), for a class.
const CONTROL: &str = r"\x00-\x1f\x7f-\x9f";

/// Rust's `char::is_whitespace` (Unicode `White_Space`), which `str::trim` trims, for a
/// class.
const SPACE: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Longest path in a workspace the API takes (a lock's path, an upload's under `inbox/`).
pub const MAX_PATH_CHARS: usize = 1024;
/// Longest part of such a path (a file system takes 255 bytes a name; a name of characters
/// beyond ASCII may still be too long for it, and is refused when written).
pub const MAX_PART_CHARS: usize = 255;

/// Why `path` is not a path in a workspace the API takes, if it is not. Relative, split on
/// `/` or `\`; `.` and empty parts are dropped (`./inbox//a.md` is `inbox/a.md`) but at least
/// one other must be left; no `..` part, no part starting `.baton` (the daemon's), no control
/// character, at most `MAX_PATH_CHARS` characters and `MAX_PART_CHARS` a part. `path_pattern` is the same rule.
pub fn path_problem(path: &str) -> Option<String> {
    if let Some(why) = relative_path_problem(path) {
        return Some(why);
    }
    let chars = path.chars().count();
    if chars > MAX_PATH_CHARS {
        return Some(format!(
            "path is {chars} characters; at most {MAX_PATH_CHARS}"
        ));
    }
    if path.chars().any(char::is_control) {
        return Some(format!("path {path:?} contains a control character"));
    }
    let mut parts = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .peekable();
    if let Some(long) = path
        .split(['/', '\\'])
        .find(|p| p.chars().count() > MAX_PART_CHARS)
    {
        return Some(format!(
            "path {path:?} has a part of {} characters; at most {MAX_PART_CHARS}",
            long.chars().count()
        ));
    }
    if parts.peek().is_none() {
        return Some(format!(
            "path {path:?} names the workspace itself (or the folder); name a file in it"
        ));
    }
    if parts.any(|p| p.starts_with(BATON_DIR)) {
        return Some(format!(
            "path {path:?} has a part starting with .baton, a name the daemon keeps for itself"
        ));
    }
    None
}

/// `path_problem`'s rule as a pattern (with `minLength` 1, `maxLength` `MAX_PATH_CHARS`).
pub fn path_pattern() -> String {
    let x = format!(r"[^{CONTROL}/\\]"); // a character of a part
                                         // `x` repeated so that a part that began with `taken` characters is at most MAX_PART_CHARS.
    let rest = |taken: usize| format!("{x}{{0,{}}}", MAX_PART_CHARS - taken);
    let sep = r"[/\\]";
    let not = |also: &str| format!(r"[^{also}{CONTROL}/\\]");
    // A part starting with `.` that is neither `.`, `..`, nor starts with `.baton`.
    let dotted = format!(
        r"\.(?:{nb}{r2}|b(?:{na}{r3}|a(?:{nt}{r4}|t(?:{no}{r5}|o(?:{nn}{r6})?)?)?)?)|\.\.{x}{{1,{most}}}",
        nb = not(".b"),
        na = not("a"),
        nt = not("t"),
        no = not("o"),
        nn = not("n"),
        r2 = rest(2),
        r3 = rest(3),
        r4 = rest(4),
        r5 = rest(5),
        r6 = rest(6),
        most = MAX_PART_CHARS - 2,
    );
    let real = format!(r"{nd}{r1}|{dotted}", nd = not("."), r1 = rest(1));
    // The path's first characters: not `/` or `\`, and no drive (`C:`).
    let first = format!(
        r"{nld}{r1}|[A-Za-z](?:{nc}{r2})?|{dotted}",
        nld = not("A-Za-z."),
        nc = not(":"),
        r1 = rest(1),
        r2 = rest(2),
    );
    format!(r"^(?:{first}|\.{sep}(?:\.?{sep})*(?:{real}))(?:{sep}(?:\.|{real})?)*$")
}

/// The shape of an event history cursor (`AT.SEQ.WORKSPACE`: Unix ms, the event's `seq`,
/// its workspace); empty is the first page.
pub const EVENT_CURSOR_PATTERN: &str = r"^(?:-?[0-9]{1,18}\.[0-9]{1,19}\..+)?$";

/// A delivery's id (`msg_` and 32 hex digits), as the outbox makes them.
pub const DELIVERY_ID_PATTERN: &str = "^msg_[0-9a-f]{32}$";

/// Longest checkpoint file name.
pub const MAX_CHECKPOINT_NAME: usize = 255;

/// A checkpoint's file name: letters, digits, `.`, `_`, `-`, not starting with `.`, ending
/// `.json`.
pub const CHECKPOINT_NAME_PATTERN: &str = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*\.json$";

/// Why `name` is not a checkpoint file name, if it is not (`CHECKPOINT_NAME_PATTERN`).
pub fn checkpoint_name_problem(name: &str) -> Option<String> {
    let ok = name.ends_with(".json")
        && !name.starts_with('.')
        && name.len() <= MAX_CHECKPOINT_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    match ok {
        true => None,
        false => Some(format!(
            "checkpoint name {name:?} must be a file name of letters, digits, `.`, `_`, `-` ending in .json (at most {MAX_CHECKPOINT_NAME} characters)"
        )),
    }
}

/// One line: no control character (a lock's purpose).
pub fn line_pattern() -> String {
    format!("^[^{CONTROL}]*$")
}

/// One line, not blank, without surrounding spaces (a lock's owner).
pub fn trimmed_line_pattern() -> String {
    format!("^[^{SPACE}{CONTROL}](?:[^{CONTROL}]*[^{SPACE}{CONTROL}])?$")
}

/// Whether `s` is a `trimmed_line_pattern` line.
pub fn is_trimmed_line(s: &str) -> bool {
    !s.trim().is_empty() && s == s.trim() && !s.chars().any(char::is_control)
}

/// One line that is not blank once trimmed (a reassignment's `to_agent`).
pub fn non_blank_line_pattern() -> String {
    format!("^[^{CONTROL}]*[^{SPACE}{CONTROL}][^{CONTROL}]*$")
}

/// Nothing but spaces, or nothing (what a form sends for a field left empty).
pub fn blank_pattern() -> String {
    format!("^[{SPACE}]*$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_as_the_lock_table_has_always_taken_them() {
        for ok in [
            "inbox/a.md",
            "./inbox/a.md",
            "inbox//a.md",
            "inbox\\a.md",
            "a",
            ".b",
            ".bato",
            "...",
            "x/./y",
            "C",
            "./C:x",
        ] {
            assert_eq!(path_problem(ok), None, "{ok:?}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "\\x",
            "C:\\x",
            "../x",
            "a/../b",
            ".",
            "./",
            "./.",
            ".baton/locks/table.json",
            "x/.batonish",
            "a\nb",
            "a\u{85}b",
        ] {
            assert!(path_problem(bad).is_some(), "{bad:?} accepted");
        }
        let long = vec!["a".repeat(MAX_PART_CHARS); 4].join("/");
        assert!(path_problem(&long).is_none());
        assert!(path_problem(&format!("{long}/abc")).is_some());
        assert!(path_problem(&"a".repeat(MAX_PART_CHARS + 1)).is_some());
    }

    /// Whether `pattern` admits `s`, as a JSON Schema validator reads it (ECMA-262).
    fn admits(pattern: &str, s: &str) -> bool {
        let schema = serde_json::json!({ "type": "string", "pattern": pattern });
        let v = jsonschema::validator_for(&schema).expect("a valid pattern");
        v.is_valid(&serde_json::json!(s))
    }

    #[test]
    fn each_pattern_says_what_its_check_does() {
        // Every string of up to 4 characters from an alphabet with the cases each rule
        // turns on, and a few longer ones.
        let alphabet = [
            'a', 'b', 't', 'o', 'n', '.', '/', '\\', ':', 'C', ' ', '\n', '\u{85}', '\u{3000}',
        ];
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all.extend(
            [
                ".baton",
                ".batonx",
                "./.baton/x",
                "x/.baton",
                "./.bato",
                "a.json",
                "-.json",
            ]
            .map(String::from),
        );
        let (path, line, trimmed) = (path_pattern(), line_pattern(), trimmed_line_pattern());
        let (named, blank) = (non_blank_line_pattern(), blank_pattern());
        let paths =
            jsonschema::validator_for(&serde_json::json!({ "type": "string", "pattern": path }))
                .unwrap();
        for s in &all {
            let v = serde_json::json!(s);
            assert_eq!(paths.is_valid(&v), path_problem(s).is_none(), "path {s:?}");
        }
        for s in all.iter().take(3000) {
            assert_eq!(
                admits(&line, s),
                !s.chars().any(char::is_control),
                "line {s:?}"
            );
            assert_eq!(admits(&trimmed, s), is_trimmed_line(s), "trimmed {s:?}");
            let non_blank = !s.trim().is_empty() && !s.chars().any(char::is_control);
            assert_eq!(admits(&named, s), non_blank, "named {s:?}");
            assert_eq!(admits(&blank, s), s.trim().is_empty(), "blank {s:?}");
            assert_eq!(
                admits(CHECKPOINT_NAME_PATTERN, s),
                checkpoint_name_problem(s).is_none(),
                "checkpoint {s:?}"
            );
        }
    }

    #[test]
    fn checkpoint_names() {
        assert_eq!(checkpoint_name_problem("step-1.json"), None);
        for bad in [".json", "a.txt", "a/b.json", "a b.json"] {
            assert!(checkpoint_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
