//! The name a lock is taken on: a file path relative to the workspace, in one spelling, so
//! that `inbox/a.md`, `./inbox/a.md` and `inbox//a.md` are one lock. The file need not exist
//! (an agent locks a file before it writes it); the path is judged on its face only.

use crate::contract::validate::relative_path_problem;

/// Longest lock path accepted, in bytes.
pub const MAX_PATH: usize = 1024;

/// The canonical spelling of `path`, or why it cannot be locked.
pub fn normalize(path: &str) -> Result<String, String> {
    if let Some(why) = relative_path_problem(path) {
        return Err(why);
    }
    if path.len() > MAX_PATH {
        return Err(format!("path is {} bytes; at most {MAX_PATH}", path.len()));
    }
    if path.chars().any(char::is_control) {
        return Err(format!("path {path:?} contains a control character"));
    }
    let parts: Vec<&str> = path
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some(first) = parts.first() else {
        return Err(format!(
            "path \"{path}\" names the workspace itself; name a file in it"
        ));
    };
    if *first == crate::workspace::BATON_DIR {
        return Err(format!(
            "path \"{path}\" is under .baton/, which the daemon owns; lock a file of the work instead"
        ));
    }
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
