//! Where an approval puts each artifact of a handoff (`approved/`), and the handoffs whose
//! artifacts would land on one another there. Promotion writes them in list order, so with
//! `inbox/deploy.sh` and `deploy.sh` both listed, the list would decide which bytes ship as
//! `approved/deploy.sh`, and a reviewer reading one would approve the other.

use super::problem::Problem;
use serde_json::Value;
use std::collections::HashMap;

/// The workspace's folder agents upload into (`inbox/x` is promoted as `approved/x`).
pub const INBOX_DIR: &str = "inbox";
/// The workspace's folder approved artifacts are promoted into.
pub const APPROVED_DIR: &str = "approved";

/// Where the promoted copy of an artifact lives: `inbox/a/b.md` -> `approved/a/b.md`, any
/// other path `p` -> `approved/p` (`.` and empty components dropped).
pub fn target(artifact: &str) -> String {
    let rel = normalize(artifact);
    let inside = rel
        .strip_prefix(INBOX_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .unwrap_or(&rel);
    format!("{APPROVED_DIR}/{inside}")
}

/// `path` without `.` and empty components (`./inbox//a` -> `inbox/a`).
fn normalize(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// A promoted path as a file system that ignores case finds it (macOS, Windows, SMB shares,
/// and wherever a deploy copies `approved/`): `approved/Deploy.sh` is `approved/deploy.sh`.
fn folded(path: &str) -> String {
    path.to_lowercase()
}

/// The artifacts of a handoff (`value`) that another one would be promoted onto: two files
/// to one path (in any case: see `folded`), or a file where another needs a folder. The same
/// file listed twice is one. `sound` tells the paths to look at (one leaving the workspace
/// has its own problem).
pub fn collisions(value: &Value, sound: impl Fn(&str) -> bool) -> Vec<Problem> {
    let artifacts = value.get("artifacts").and_then(Value::as_array);
    let listed: Vec<(usize, &str)> = (artifacts.into_iter().flatten().enumerate())
        .filter_map(|(i, a)| Some((i, a.get("path")?.as_str()?)))
        .filter(|(_, path)| sound(path))
        .collect();
    let mut problems = Vec::new();
    // Each target by the first artifact promoted there.
    let mut first: HashMap<String, (usize, &str)> = HashMap::new();
    for &(i, path) in &listed {
        let to = target(path);
        match first.get(&folded(&to)) {
            Some(&(j, other)) if normalize(other) != normalize(path) => {
                let theirs = target(other);
                let onto = match theirs == to {
                    true => to.clone(),
                    false => format!(
                        "{to} and {theirs}, one file where case is ignored (macOS, Windows, \
                         SMB shares)"
                    ),
                };
                problems.push(Problem::new(
                    format!("/artifacts/{i}/path"),
                    format!(
                        "\"{path}\" (/artifacts/{i}) and \"{other}\" (/artifacts/{j}) would both \
                         be promoted to {onto}, and which one ships would depend on their order: \
                         rename one of the files, or list only the one to approve"
                    ),
                ))
            }
            Some(_) => {}
            None => {
                first.insert(folded(&to), (i, path));
            }
        }
    }
    for &(i, path) in &listed {
        let to = target(path);
        let folders = to.match_indices('/').map(|(at, _)| &to[..at]).skip(1);
        for folder in folders {
            if let Some(&(j, other)) = first.get(&folded(folder)) {
                problems.push(Problem::new(
                    format!("/artifacts/{i}/path"),
                    format!(
                        "\"{path}\" (/artifacts/{i}) would be promoted to {to}, inside {folder}, \
                         where \"{other}\" (/artifacts/{j}) is promoted as a file: one would \
                         replace the other; rename one of them"
                    ),
                ));
                break;
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(paths: &[&str]) -> Vec<Problem> {
        let artifacts: Vec<Value> = paths.iter().map(|p| json!({ "path": p })).collect();
        collisions(&json!({ "artifacts": artifacts }), |_| true)
    }

    #[test]
    fn targets() {
        assert_eq!(target("inbox/notes.md"), "approved/notes.md");
        assert_eq!(target("./inbox//src/a.rs"), "approved/src/a.rs");
        assert_eq!(target("reports/x.txt"), "approved/reports/x.txt");
        assert_eq!(target("inboxes/x"), "approved/inboxes/x");
    }

    #[test]
    fn two_files_promoted_to_one_path_are_refused_naming_both() {
        let p = problems(&["inbox/deploy.sh", "notes.md", "deploy.sh"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].pointer, "/artifacts/2/path");
        for word in [
            "/artifacts/0",
            "/artifacts/2",
            "approved/deploy.sh",
            "inbox/deploy.sh",
        ] {
            assert!(p[0].message.contains(word), "{word}: {}", p[0].message);
        }
    }

    #[test]
    fn a_file_where_another_needs_a_folder_is_refused() {
        let p = problems(&["inbox/a", "a/b.txt"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].pointer, "/artifacts/1/path");
        assert!(
            p[0].message.contains("inside approved/a"),
            "{}",
            p[0].message
        );
        assert!(problems(&["inbox/a/b.txt", "a"]).len() == 1);
    }

    #[test]
    fn paths_that_differ_only_in_case_are_one_path() {
        let p = problems(&["inbox/Deploy.sh", "inbox/deploy.sh"]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message.contains(
                "approved/deploy.sh and approved/Deploy.sh, one file where case is ignored"
            ),
            "{}",
            p[0].message
        );
        assert_eq!(problems(&["inbox/Bin", "bin/run.sh"]).len(), 1);
        assert_eq!(problems(&["inbox/ÉTÉ.md", "été.md"]).len(), 1);
    }

    #[test]
    fn the_same_file_listed_twice_and_distinct_targets_pass() {
        assert!(problems(&["inbox/a.md", "./inbox//a.md"]).is_empty());
        assert!(problems(&["inbox/a.md", "inbox/b/a.md", "inboxes/a.md", "ab/c"]).is_empty());
    }
}
