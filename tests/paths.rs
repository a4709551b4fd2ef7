//! The path resolver never answers with a path outside the workspace, whatever the agent
//! wrote: `..`, absolute paths, symlinks in and out, odd bytes (property-tested).

use baton::workspace::{resolve, PathError};
use proptest::prelude::*;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

/// root/{inbox/a.txt, inbox/sub/b.txt, link_in -> inbox, link_out -> outside, dangling -> /nowhere}
fn tree() -> (tempfile::TempDir, PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("ws");
    std::fs::create_dir_all(root.join("inbox/sub")).unwrap();
    std::fs::create_dir_all(top.path().join("outside")).unwrap();
    std::fs::write(root.join("inbox/a.txt"), "a").unwrap();
    std::fs::write(root.join("inbox/sub/b.txt"), "b").unwrap();
    std::fs::write(top.path().join("outside/secret.txt"), "s").unwrap();
    symlink(root.join("inbox"), root.join("link_in")).unwrap();
    symlink(top.path().join("outside"), root.join("link_out")).unwrap();
    symlink("/nowhere/at/all", root.join("dangling")).unwrap();
    symlink("../outside/secret.txt", root.join("inbox/up")).unwrap();
    let root = root.canonicalize().unwrap();
    (top, root)
}

#[test]
fn known_paths_resolve_or_are_refused_with_the_reason() {
    let (_top, root) = tree();
    assert_eq!(
        resolve(&root, "inbox/a.txt").unwrap(),
        root.join("inbox/a.txt")
    );
    assert_eq!(
        resolve(&root, "link_in/sub/b.txt").unwrap(),
        root.join("inbox/sub/b.txt")
    );
    assert_eq!(
        resolve(&root, "./inbox/a.txt").unwrap(),
        root.join("inbox/a.txt")
    );
    let refused = |p: &str| resolve(&root, p).unwrap_err().to_string();
    assert_eq!(
        refused("../outside/secret.txt"),
        "path \"../outside/secret.txt\" contains \"..\" and would leave the workspace"
    );
    assert_eq!(refused("/etc/passwd"), "path \"/etc/passwd\" is absolute; give a path relative to the workspace, e.g. inbox/report.md");
    assert_eq!(
        refused("link_out/secret.txt"),
        "path \"link_out/secret.txt\" resolves through a symlink to a place outside the workspace"
    );
    assert_eq!(
        refused("inbox/up"),
        "path \"inbox/up\" resolves through a symlink to a place outside the workspace"
    );
    assert_eq!(
        refused("dangling"),
        "path \"dangling\" resolves through a symlink to a place outside the workspace"
    );
    assert_eq!(
        resolve(&root, "inbox/none.txt"),
        Err(PathError::Missing("inbox/none.txt".into()))
    );
    assert_eq!(refused(""), "path is empty");
    assert_eq!(refused("inbox/\0x"), "path contains a NUL byte");
    assert_eq!(
        refused("C:\\x"),
        "path \"C:\\x\" is absolute; give a path relative to the workspace, e.g. inbox/report.md"
    );
}

fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just("".to_string()),
        Just("inbox".to_string()),
        Just("sub".to_string()),
        Just("a.txt".to_string()),
        Just("link_in".to_string()),
        Just("link_out".to_string()),
        Just("dangling".to_string()),
        Just("up".to_string()),
        Just("secret.txt".to_string()),
        Just("outside".to_string()),
        "[a-z\\\\:~%\u{e9}\u{1F600}]{1,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn resolve_never_leaves_the_workspace(parts in prop::collection::vec(component(), 0..7), absolute in any::<bool>()) {
        static TREE: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
        let root = &TREE.get_or_init(tree).1;
        let rel = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
        if let Ok(path) = resolve(root, &rel) {
            prop_assert!(path.starts_with(root), "{rel} -> {}", path.display());
            prop_assert!(path.exists());
        }
    }
}
