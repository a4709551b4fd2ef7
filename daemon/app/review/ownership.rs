//! Who owns a workspace: the person to ask about it and whose call its work is. A reviewer
//! takes ownership of an unowned workspace, the owner (or an admin) hands it to another
//! person, an admin takes it from anyone. Kept in the store (`owner.json`), shown on the
//! workspace's page, logged as `workspace.owner_changed` (`{owner, previous?, by}`).
//!
//! `owner.json` is sealed (see `store::memo`). A damaged one is not read as "no owner", which
//! would let anyone take the workspace: its owner is unknown, only an admin may set one (which
//! writes it sound again), and the damage is told (`memo_damage`).

use crate::app::review::Cx;
use crate::auth::Actor;
use crate::clock::now_rfc3339;
use crate::events::{Event, EventType};
use crate::store::memo::{self, Memo};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;

const OWNER: &str = "owner.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub owner: String,
    pub since: String,
    /// Who made this owner the owner.
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("no workspace named \"{0}\"")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    /// The person named is not one the configuration knows: nothing to hand it to (404, as
    /// for any name that names nothing).
    #[error("\"{0}\" is not a configured user; a workspace is owned by a person who can sign in")]
    UnknownUser(String),
    #[error("cannot record the owner, nothing was changed; try again: {0}")]
    Io(#[from] std::io::Error),
}

impl Cx<'_> {
    /// The owner of workspace `name`, if it has one.
    pub fn owner_of(&self, name: &str) -> Option<Ownership> {
        self.owner_known(name).ok().flatten()
    }

    /// The owner of workspace `name`, if it has one; `Err` (told) when `owner.json` is
    /// damaged: who owns it is then not known.
    fn owner_known(&self, name: &str) -> Result<Option<Ownership>, String> {
        let Some(ws) = self.workspace(name) else {
            return Ok(None);
        };
        match memo::read(&ws.store, Path::new(OWNER)) {
            Memo::Absent => Ok(None),
            Memo::Sound(owner) => Ok(Some(owner)),
            Memo::Damaged(why) => {
                let action = "the owner is unknown: only an admin can set it \
                              (`POST /api/v1/workspaces/{ws}/owner` or the workspace page), which writes it again; \
                              the audit log's last workspace.owner_changed says who it was";
                self.memo_damaged(&ws, OWNER, &why, action);
                Err(why)
            }
        }
    }

    /// `actor` makes `to` (themselves if `None`) the owner of workspace `name`.
    pub fn set_owner(
        &self,
        name: &str,
        to: Option<&str>,
        actor: &Actor,
    ) -> Result<Ownership, OwnerError> {
        let Actor::Reviewer { name: who, roles } = actor else {
            return Err(OwnerError::Forbidden(
                "agent tokens cannot own workspaces".into(),
            ));
        };
        let ws = self
            .workspace(name)
            .ok_or_else(|| OwnerError::NotFound(name.to_string()))?;
        let to = to.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(who);
        let known = to == "admin" || self.config().users.iter().any(|u| u.name == to);
        if !known {
            return Err(OwnerError::UnknownUser(to.to_string()));
        }
        // The workspace lock orders this with other changes of the workspace.
        let _st = ws.lock();
        let admin = roles.iter().any(|r| r == "admin");
        let current = match self.owner_known(name) {
            Ok(None) if !admin && owner_was_logged(&ws.workspace.events_path()) => {
                let why =
                    "removed, though the audit log records an owner (workspace.owner_changed)";
                let action = "the owner is unknown: only an admin can set it \
                              (`POST /api/v1/workspaces/{ws}/owner` or the workspace page), which writes it again; \
                              the audit log's last workspace.owner_changed says who it was";
                self.memo_damaged(&ws, OWNER, why, action);
                return Err(OwnerError::Forbidden(format!(
                    "who owns {name} is not known: its owner.json in the store is gone ({why}); \
                     an admin can set the owner again"
                )));
            }
            Ok(current) => current,
            Err(why) if !admin => {
                return Err(OwnerError::Forbidden(format!(
                    "who owns {name} is not known: its owner.json in the store is damaged ({why}); \
                     an admin can set the owner again"
                )))
            }
            // An admin may take it from anyone, so from an owner not known too.
            Err(_) => None,
        };
        let holder = current.as_ref().map(|c| c.owner.as_str());
        if holder == Some(to) {
            return Ok(current.expect("holder is some"));
        }
        let allowed = admin || holder == Some(who.as_str()) || (holder.is_none() && to == who);
        if !allowed {
            let why = match holder {
                Some(h) => format!(
                    "{name} is owned by {h}; only {h} or an admin can give it to someone else"
                ),
                None => format!(
                    "{name} has no owner; take it yourself (an admin can give it to someone)"
                ),
            };
            return Err(OwnerError::Forbidden(why));
        }
        let next = Ownership {
            owner: to.to_string(),
            since: now_rfc3339(),
            by: who.clone(),
        };
        let old = ws.store.read(Path::new(OWNER))?;
        memo::write(&ws.store, Path::new(OWNER), &next)?;
        let data = json!({ "owner": to, "previous": holder, "by": who });
        let event = Event::new(EventType::WorkspaceOwnerChanged, name, None, data);
        if let Err(e) = self.emit(&ws, event) {
            // Fail closed: no change without its event.
            let _ = match old {
                Some(old) => ws.store.write(Path::new(OWNER), &old),
                None => ws.store.remove(Path::new(OWNER)),
            };
            return Err(OwnerError::Io(e));
        }
        ws.memos.mended(OWNER);
        Ok(next)
    }
}

/// Whether the workspace's audit log records an owner. An owner is never taken back (only
/// handed on), so `owner.json` absent after one was logged was removed: read as "no owner" it
/// would let anyone take the workspace. Read only when someone takes an unowned workspace; the
/// log is the agents' ground, so it only ever refuses a take (an admin may still set one).
fn owner_was_logged(log: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(log) else {
        return false;
    };
    let kind = "workspace.owner_changed";
    std::io::BufReader::new(file)
        .split(b'\n')
        .map_while(Result::ok)
        .filter(|line| line.windows(kind.len()).any(|w| w == kind.as_bytes()))
        .any(|line| {
            serde_json::from_slice::<serde_json::Value>(&line).is_ok_and(|e| e["type"] == kind)
        })
}
