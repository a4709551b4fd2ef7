//! The files a workspace page lists (`inbox/` and `approved/`), opened for download the way
//! artifacts are: confined to the workspace (no symlink on the way or at the end), regular
//! files only, and no more than their size when opened.

use crate::app::views::artifact_raw::{Raw, MAX_RAW_BYTES};
use crate::app::views::artifact_view::{Check, ViewError};
use crate::app::App;
use crate::auth::Actor;
use crate::contract::validate::relative_path_problem;
use crate::workspace::{ReadError, APPROVED_DIR, INBOX_DIR};

impl App {
    /// File `path` (`inbox/...` or `approved/...`) of workspace `name`, if the actor may see
    /// the workspace. Anything else is `Missing`, as a file that is not there.
    pub fn workspace_file(&self, name: &str, path: &str, actor: &Actor) -> Result<Raw, ViewError> {
        let missing = || ViewError::Missing(path.to_string());
        let ws = self
            .workspace(name)
            .filter(|_| actor.can_see(name))
            .ok_or_else(missing)?;
        let top = path.split('/').next().unwrap_or_default();
        let listed = top == INBOX_DIR || top == APPROVED_DIR;
        if !listed || relative_path_problem(path).is_some() || path.split('/').any(|c| c == "..") {
            return Err(missing());
        }
        let (file, identity) = match ws.workspace.open_regular(&ws.workspace.root.join(path)) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(missing()),
            Err(ReadError::NotRegular) => return Err(ViewError::NotRegular(path.to_string())),
            Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(ViewError::NotRegular(path.to_string()))
            }
            Err(e) => {
                let e = std::io::Error::other(e.to_string());
                return Err(ViewError::Io(path.to_string(), e));
            }
        };
        if identity.size > MAX_RAW_BYTES {
            return Err(ViewError::TooLarge {
                path: path.to_string(),
                size: identity.size,
                limit: MAX_RAW_BYTES,
            });
        }
        Ok(Raw {
            file,
            size: identity.size,
            name: path.rsplit('/').next().unwrap_or(path).to_string(),
            check: Check::Unchecked,
            image: None,
        })
    }
}
