//! The name a lock is taken on: a file path relative to the workspace, in one spelling, so
//! that `inbox/a.md`, `./inbox/a.md` and `inbox//a.md` are one lock. The file need not exist
//! (an agent locks a file before it writes it); the path is judged on its face only.

use crate::contract::names::path_problem;

/// The canonical spelling of `path`, or why it cannot be locked (`names::path_problem`: the
/// rule the API's schema publishes as a pattern).
pub fn normalize(path: &str) -> Result<String, String> {
    if let Some(why) = path_problem(path) {
        return Err(why);
    }
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spellings_of_one_file_are_one_lock() {
        for p in [
            "inbox/a.md",
            "./inbox/a.md",
            "inbox//a.md",
            "inbox\\a.md",
            "inbox/./a.md",
        ] {
            assert_eq!(normalize(p).unwrap(), "inbox/a.md", "{p}");
        }
    }

    #[test]
    fn paths_leaving_the_workspace_are_refused() {
        for p in [
            "",
            "/etc/passwd",
            "../x",
            "inbox/../../x",
            "a\0b",
            "C:\\x",
            ".",
            ".baton/locks/table.json",
            "a\nb",
        ] {
            assert!(normalize(p).is_err(), "{p:?} accepted");
        }
    }
}
