//! Debian's package checker on what packaging/build-deb wrote.

use std::path::Path;
use std::process::Command;

/// The lintian tags of `debs` that are errors or warnings (`E:`/`W:` lines), at --pedantic,
/// with the whole report for messages. Overrides, if a package ships any, are honoured.
pub fn complaints(debs: &[&Path]) -> (Vec<String>, String) {
    let out = Command::new("lintian")
        .args(["--pedantic", "--no-tag-display-limit"])
        .args(debs)
        .output()
        .expect("lintian runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // 0: no error tags, 1: some (the lines below say which); anything else: it did not check.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "lintian failed ({}): {report}",
        out.status
    );
    let tags = report
        .lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .map(str::to_string)
        .collect();
    (tags, report)
}
