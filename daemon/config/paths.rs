//! The paths a configuration names, checked against the filesystem before the daemon uses
//! them, so that every mistake names the file and the key (`workspaces[1] ("teams")`), and
//! the `workspaces` entries that hold no workspace, which are warned about, not refused (a
//! root may be filled while the daemon runs).

use super::{Config, ConfigError};
use std::path::{Path, PathBuf};

impl Config {
    /// The key of `workspaces` entry `i` as an operator finds it in the file.
    pub fn entry_key(&self, i: usize) -> String {
        let raw = self.workspace_entries.get(i).map_or("", String::as_str);
        format!("workspaces[{i}] (\"{raw}\")")
    }

    /// Checks that every `workspaces` entry is a readable folder and makes `data_dir`; the
    /// entries become canonical paths (as the daemon's workspace roots are), so they can be
    /// told apart later without the filesystem.
    pub fn check_paths(&mut self) -> Result<(), ConfigError> {
        let fail = |key: String, path: &Path, why: String| ConfigError {
            source_name: self.source_name.clone(),
            message: format!("{key}: {}: {why}", path.display()),
        };
        let mut canonical = Vec::with_capacity(self.workspaces.len());
        for (i, entry) in self.workspaces.iter().enumerate() {
            let key = self.entry_key(i);
            let dir = entry
                .canonicalize()
                .map_err(|e| fail(key.clone(), entry, e.to_string()))?;
            if !dir.is_dir() {
                let why = "not a folder; give a workspace folder or a folder of workspaces";
                return Err(fail(key, entry, why.into()));
            }
            std::fs::read_dir(&dir).map_err(|e| fail(key.clone(), entry, e.to_string()))?;
            canonical.push(dir);
        }
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            fail(
                "data_dir".into(),
                &self.data_dir,
                format!("cannot create: {e}"),
            )
        })?;
        self.workspaces = canonical;
        Ok(())
    }

    /// The keys of the `workspaces` entries that hold no workspace now: roots none of
    /// `workspace_roots` is directly under. `roots`: the entries that are roots (not
    /// themselves workspaces); both canonical, as `check_paths` makes the entries.
    pub fn empty_entries(&self, roots: &[PathBuf], workspace_roots: &[PathBuf]) -> Vec<String> {
        self.workspaces
            .iter()
            .enumerate()
            .filter(|(_, entry)| roots.contains(entry))
            .filter(|(_, entry)| {
                !workspace_roots
                    .iter()
                    .any(|w| w.parent() == Some(entry.as_path()))
            })
            .map(|(i, _)| self.entry_key(i))
            .collect()
    }
}
