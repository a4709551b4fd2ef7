//! Resolving agent-written relative paths so that the result is always inside the workspace.

use crate::contract::validate::relative_path_problem;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Refused on its face: absolute, `..`, empty, NUL.
    #[error("{0}")]
    Refused(String),
    #[error("path \"{0}\" resolves through a symlink to a place outside the workspace")]
    Escapes(String),
    #[error("no file at \"{0}\" in the workspace")]
    Missing(String),
    #[error("cannot resolve \"{0}\": {1}")]
    Io(String, String),
}

/// Resolves `rel` under the canonical `root`. The answer is canonical and inside `root`, or an
/// error: symlinks are followed and then judged by where they land.
pub fn resolve(root: &Path, rel: &str) -> Result<PathBuf, PathError> {
    if let Some(why) = relative_path_problem(rel) {
        return Err(PathError::Refused(why));
    }
    let full = root.join(rel);
    let real = match full.canonicalize() {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A dangling symlink is "missing" only if its target would be inside.
            return match std::fs::read_link(&full) {
                Ok(target) if escapes(&target) => Err(PathError::Escapes(rel.into())),
                _ => Err(PathError::Missing(rel.into())),
            };
        }
        Err(e) => return Err(PathError::Io(rel.into(), e.to_string())),
    };
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(PathError::Escapes(rel.into()))
    }
}

/// Where a dangling symlink points, judged on its face: absolute or upward targets escape.
fn escapes(target: &Path) -> bool {
    target.is_absolute()
        || target
            .components()
            .any(|c| c == std::path::Component::ParentDir)
}
