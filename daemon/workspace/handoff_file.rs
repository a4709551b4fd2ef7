//! Which handoff file is in place: `handoff.json`, `handoff.yaml` or `handoff.yml`. When more
//! than one exists, the one modified last counts (on a tie, in that order) and the others are
//! named, so they can be reported: an agent that switched formats may have left one behind.

use super::{Workspace, HANDOFF_FILE};
use crate::contract::validate::Format;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Every name a handoff may be written under, JSON first.
pub const HANDOFF_FILES: [&str; 3] = [HANDOFF_FILE, "handoff.yaml", "handoff.yml"];

/// The handoff file that counts in a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffFile {
    /// `handoff.json` when none exists.
    pub path: PathBuf,
    pub format: Format,
    /// Other handoff files present, older than `path`: they do not count.
    pub shadowed: Vec<PathBuf>,
}

impl HandoffFile {
    /// The file's name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    }
}

/// The handoff file that counts in the workspace at `root`. A symlink or folder under one of
/// the names counts as present (reading it refuses it), so it cannot hide behind another.
pub fn handoff_file(root: &Path) -> HandoffFile {
    let mut present: Vec<(SystemTime, usize, PathBuf)> = HANDOFF_FILES
        .iter()
        .enumerate()
        .filter_map(|(order, name)| {
            let path = root.join(name);
            let meta = std::fs::symlink_metadata(&path).ok()?;
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            Some((modified, order, path))
        })
        .collect();
    // Newest first; on the same time, JSON before YAML.
    present.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut paths = present.into_iter().map(|(_, _, p)| p);
    let path = paths.next().unwrap_or_else(|| root.join(HANDOFF_FILE));
    HandoffFile {
        format: Format::of(&path),
        path,
        shadowed: paths.collect(),
    }
}

impl Workspace {
    pub fn handoff_file(&self) -> HandoffFile {
        handoff_file(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, FileTimes};
    use std::time::Duration;

    fn touch(path: &Path, secs: u64) {
        fs::write(path, "x").unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let file = File::options().write(true).open(path).unwrap();
        file.set_times(FileTimes::new().set_modified(at)).unwrap();
    }

    #[test]
    fn the_newest_counts_and_the_others_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(handoff_file(root).path, root.join("handoff.json"));
        touch(&root.join("handoff.json"), 1000);
        touch(&root.join("handoff.yaml"), 2000);
        let file = handoff_file(root);
        assert_eq!(
            (file.name(), file.format),
            ("handoff.yaml".into(), Format::Yaml)
        );
        assert_eq!(file.shadowed, vec![root.join("handoff.json")]);
        touch(&root.join("handoff.json"), 2000);
        assert_eq!(
            handoff_file(root).name(),
            "handoff.json",
            "a tie goes to JSON"
        );
        touch(&root.join("handoff.yml"), 3000);
        assert_eq!(handoff_file(root).shadowed.len(), 2);
    }
}
