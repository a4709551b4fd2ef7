//! Writes by agents through the API: files under `inbox/`, `checkpoints/*.json` and
//! `handoff.json` of the agent's own workspaces, and nothing else (SPEC section 9: agents "can
//! write only to inbox/, checkpoints and handoff.json"). Each is written whole, atomically
//! (temp file + rename) and confined to the workspace: a path that would leave it (`..`, in
//! any encoding, absolute, NUL) is refused before anything is written, and a symlinked folder
//! on the way makes the write fail instead of following it. The files are then processed as
//! if the agent had written them on the share.

use crate::app::review::Cx;
use crate::auth::Actor;
use crate::contract::names::{checkpoint_name_problem, path_problem};
use crate::contract::validate::sha256_hex;
use crate::workspace::{CHECKPOINTS_DIR, HANDOFF_FILE, INBOX_DIR};
use serde::Serialize;
use std::io;

/// Where an upload goes.
#[derive(Debug, Clone)]
pub enum Target {
    /// `inbox/<path>`.
    Inbox(String),
    /// `checkpoints/<name>`, a `*.json` file name.
    Checkpoint(String),
    /// `handoff.json`.
    Handoff,
}

/// What an upload answers.
#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    /// Relative to the workspace.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// No file was at that path before.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no workspace named \"{0}\" that you may write to")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    /// What is on the share stands in the way: a folder where the file would go, or a file
    /// where a folder of its path would (409: the path conflicts with what is there).
    #[error("{0}")]
    Occupied(String),
    #[error("the file is {size} bytes; at most {limit} may be uploaded (limits.max_upload_bytes)")]
    TooLarge { size: usize, limit: usize },
    #[error("{} is locked by {} (purpose: {}) until {}; nothing was written", .0.path, .0.owner, .0.purpose.as_deref().unwrap_or("none given"), .0.expires_at)]
    Locked(Box<crate::locks::Lock>),
    /// The agent holds the most unbound uploads it may (`limits.max_unbound_uploads`).
    #[error("agent \"{agent}\" holds uploads at {held} inbox paths that no received handoff names yet, the most one agent may (limits.max_unbound_uploads = {limit}); submit the handoff that names them, or upload again to one of those paths; nothing was written")]
    TooManyUnbound {
        agent: String,
        held: usize,
        limit: usize,
    },
    #[error("cannot write the file, nothing was changed: {0}")]
    Io(#[from] io::Error),
}

/// (key, agent, content digest) of a handoff an agent uploads: see `review::filing`.
type Filing = (String, String, String);

impl Cx<'_> {
    /// Writes an agent's file into workspace `name`.
    pub fn upload(
        &self,
        name: &str,
        target: Target,
        bytes: &[u8],
        actor: &Actor,
    ) -> Result<Uploaded, UploadError> {
        may_upload(actor, name)?;
        let ws = self
            .workspace(name)
            .ok_or_else(|| UploadError::NotFound(name.to_string()))?;
        let rel = relative(&target)?;
        if bytes.is_empty() {
            // An empty PUT is most often a client that sent no body; writing a 0-byte file
            // would replace the agent's work with nothing.
            return Err(UploadError::Invalid(format!(
                "the body is empty: send the bytes of {rel} as the request body; nothing was written"
            )));
        }
        if matches!(target, Target::Handoff) {
            bound_to_token(actor, bytes)?;
        }
        let limit = self.config().max_upload_bytes;
        if bytes.len() > limit {
            return Err(UploadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        self.unbound_room(name, &target, &rel, actor)?;
        // Writes through the daemon honour the advisory locks: another owner's lock refuses.
        if let Some(held) = self.locks_of(&ws).into_iter().find(|l| l.path == rel) {
            if !crate::app::review::locks::acts_as(actor, &held.owner) {
                return Err(UploadError::Locked(Box::new(held)));
            }
        }
        let path = ws.workspace.root.join(&rel);
        let created = std::fs::symlink_metadata(&path).is_err();
        // A handoff written by rename is received at once, and its receipt proves its sender
        // under the workspace's lock: held until the upload's line is written, so the receipt
        // finds it (one it missed would leave that revision unproven for good).
        let receipt_waits = match target {
            Target::Handoff => {
                let st = ws.lock();
                // Checked under the lock the receipt takes, so no revision lands in between.
                let filing = self.revises_its_own(&ws, &st, bytes, actor)?;
                Some((st, filing))
            }
            _ => None,
        };
        // Before the bytes are in place: their first receipt takes only them, not a same-id
        // file another writer of the folder puts in their place before it (`review::filing`).
        let filing = receipt_waits.as_ref().and_then(|(_, f)| f.clone());
        if let Some((key, agent, digest)) = &filing {
            crate::app::review::filing::begin(name, key, agent, digest);
        }
        ws.workspace
            .write(&path, bytes)
            .inspect_err(|_| {
                if let Some((key, ..)) = &filing {
                    crate::app::review::filing::end(name, key);
                }
            })
            .map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => UploadError::Forbidden(e.to_string()),
                io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory => {
                    UploadError::Occupied(format!(
                        "{rel}: a folder is where the file would go, or a file where a folder of its path would; nothing was written"
                    ))
                }
                // ENAMETOOLONG: a name in the path is over the file system's limit.
                io::ErrorKind::InvalidFilename => UploadError::Invalid(format!(
                    "{rel}: a name in the path is too long for the file system (most take 255 bytes a name); nothing was written"
                )),
                _ => UploadError::Io(e),
            })?;
        let sha256 = sha256_hex(bytes);
        if let Actor::Agent { name: agent, .. } = actor {
            // Only now that the bytes are in place: a write that failed proves nothing. The
            // receipt reads the file after the settle time, by when this line is there; one
            // that is not makes the sender unproven, never the reverse.
            let upload = Upload {
                ws: name,
                target: &target,
                rel: &rel,
                bytes,
                sha256: &sha256,
                agent,
            };
            prove_sender(&self.config().data_dir, &ws.workspace, &path, &upload);
        }
        drop(receipt_waits);
        tracing::info!(workspace = %name, path = %rel, size = bytes.len(), "agent file uploaded");
        Ok(Uploaded {
            path: rel,
            size: bytes.len() as u64,
            sha256,
            created,
        })
    }
}

impl Cx<'_> {
    /// Refuses an agent's upload to a new inbox path once it holds as many unbound uploads as
    /// it may: each is a line the daemon keeps and reads back at every start, and an agent
    /// writing to ever new paths would grow them without end. Another upload to a path it
    /// holds replaces one; a received handoff naming them frees them.
    fn unbound_room(
        &self,
        ws: &str,
        target: &Target,
        rel: &str,
        actor: &Actor,
    ) -> Result<(), UploadError> {
        let (Target::Inbox(_), Actor::Agent { name: agent, .. }) = (target, actor) else {
            return Ok(());
        };
        let limit = self.config().max_unbound_uploads;
        let (held, here) = crate::policy::proof::unbound(&self.config().data_dir, agent, ws, rel);
        if here || held < limit {
            return Ok(());
        }
        tracing::warn!(workspace = %ws, path = %rel, agent = %agent, held, limit,
            "upload refused: the agent holds as many unbound uploads as limits.max_unbound_uploads allows");
        self.metrics().error("unbound_uploads");
        Err(UploadError::TooManyUnbound {
            agent: agent.clone(),
            held,
            limit,
        })
    }
}

impl Cx<'_> {
    /// A handoff under a key already recorded revises that record, so only its sender may
    /// write it: the agent proven to have sent it, else the one its `from_agent` names (a
    /// record no token proves is still that agent's to revise, not any other's). Every channel
    /// that files a handoff (`PUT .../handoff`, A2A `SendMessage`) goes through `upload`, so
    /// through this. Admins are not agents and write any workspace's files.
    fn revises_its_own(
        &self,
        ws: &crate::app::state::Served,
        st: &crate::app::state::WsState,
        bytes: &[u8],
        actor: &Actor,
    ) -> Result<Option<Filing>, UploadError> {
        use crate::contract::validate;
        let Actor::Agent { name, .. } = actor else {
            return Ok(None);
        };
        let ws_name = &ws.workspace.name;
        // The key the pipeline will file these bytes under, valid or not (an invalid answer
        // is given under it too).
        let (key, filing) = match validate::handoff(bytes, &self.config().limits) {
            Ok(acc) => {
                let key = validate::handoff_key(ws_name, &acc);
                let filing = (key.clone(), name.clone(), acc.digest.clone());
                (key, Some(filing))
            }
            Err(rejected) => (validate::rejected_key(ws_name, &rejected), None),
        };
        let Some(rec) = st.records.get(&key) else {
            return Ok(filing);
        };
        let sender = self
            .proven_sender(rec, ws_name)
            .unwrap_or_else(|| rec.head().from_agent.trim().to_string());
        if crate::app::review::locks::acts_as(actor, &sender) {
            // A revision: no first receipt to guard.
            return Ok(None);
        }
        tracing::warn!(workspace = %ws_name, key, agent = %name, sender = %sender,
            "refused an upload revising another agent's handoff");
        Err(UploadError::Forbidden(format!(
            "handoff {key} was submitted by {sender}: an agent may revise only its own handoffs; \
             give yours another id; nothing was written"
        )))
    }
}

/// An agent's upload, written.
struct Upload<'a> {
    ws: &'a str,
    target: &'a Target,
    rel: &'a str,
    bytes: &'a [u8],
    sha256: &'a str,
    agent: &'a str,
}

/// Records that `agent`'s token wrote this handoff content, or these bytes of an inbox file,
/// as the file now at `path` (`crate::policy::proof`), so that a revision received from that
/// very file, unchanged, has `agent` as its proven sender; one that cannot be recorded is only
/// left unproven. The file is opened again (no symlink on the way) and its bytes hashed from
/// that descriptor, whose identity is the one recorded: a file another writer of the share put
/// there since, with other bytes, is not taken for the upload.
fn prove_sender(
    data_dir: &std::path::Path,
    workspace: &crate::workspace::Workspace,
    path: &std::path::Path,
    u: &Upload<'_>,
) {
    if matches!(u.target, Target::Checkpoint(_)) {
        return;
    }
    let written = match workspace.open_regular(path) {
        Ok(Some((file, identity))) => match crate::workspace::sha256_open_file(file) {
            Ok(sha) if sha.eq_ignore_ascii_case(u.sha256) => Ok(identity),
            Ok(_) => Err(io::Error::other(
                "the file was replaced before its upload could be recorded",
            )),
            Err(e) => Err(e),
        },
        Ok(None) => Err(io::Error::from(io::ErrorKind::NotFound)),
        Err(e) => Err(io::Error::other(e.to_string())),
    };
    let recorded = written.and_then(|identity| match u.target {
        Target::Handoff => match crate::contract::validate::handoff_digest(u.bytes) {
            Some(digest) => {
                crate::policy::proof::record(data_dir, u.ws, &digest, u.agent, &identity)
            }
            None => Ok(()),
        },
        Target::Inbox(_) => {
            crate::policy::proof::record_file(data_dir, u.ws, u.rel, u.sha256, u.agent, &identity)
        }
        Target::Checkpoint(_) => Ok(()),
    });
    if let Err(e) = recorded {
        tracing::warn!(workspace = %u.ws, path = %u.rel, agent = u.agent, error = %e, "cannot record the upload's sender; what it sent has no proven sender");
    }
}

/// A handoff uploaded with an agent's token is that agent's: its `from_agent` must name it
/// (or `NAME/WORKER`), so the name the pages show and the locks released on receipt are the
/// ones the token proves. Refused rather than rewritten: the agent learns its name is wrong,
/// and the bytes it keeps are the bytes baton holds. A body that is not JSON is left to the
/// pipeline, which says why it is invalid.
fn bound_to_token(actor: &Actor, bytes: &[u8]) -> Result<(), UploadError> {
    let Actor::Agent { name, .. } = actor else {
        return Ok(());
    };
    let doc: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(doc) => doc,
        Err(_) => return Ok(()),
    };
    match doc.get("from_agent").and_then(|v| v.as_str()) {
        Some(claimed) if !crate::app::review::locks::acts_as(actor, claimed.trim()) => {
            Err(UploadError::Forbidden(format!(
                "handoff.json: from_agent \"{claimed}\" is not this token's agent; this token \
                 is agent \"{name}\": write \"from_agent\": \"{name}\" (or \"{name}/WORKER\"); \
                 nothing was written"
            )))
        }
        _ => Ok(()),
    }
}

/// Agents write to the workspaces their token covers (another one is "not found", as for
/// reading); admins anywhere; other reviewers decide, they do not write agents' files.
fn may_upload(actor: &Actor, name: &str) -> Result<(), UploadError> {
    match actor {
        Actor::Agent { .. } if actor.can_see(name) => Ok(()),
        Actor::Agent { .. } => Err(UploadError::NotFound(name.to_string())),
        Actor::Reviewer { roles, .. } if roles.iter().any(|r| r == "admin") => Ok(()),
        Actor::Reviewer { name: who, .. } => Err(UploadError::Forbidden(format!(
            "{who} is a reviewer; only agent tokens (and admins) write agents' files"
        ))),
    }
}

/// The workspace-relative path of an upload, refused on its face if it could leave its folder.
fn relative(target: &Target) -> Result<String, UploadError> {
    match target {
        Target::Handoff => Ok(HANDOFF_FILE.to_string()),
        Target::Checkpoint(name) => match checkpoint_name_problem(name) {
            None => Ok(format!("{CHECKPOINTS_DIR}/{name}")),
            Some(why) => Err(UploadError::Invalid(why)),
        },
        Target::Inbox(path) => {
            if let Some(why) = path_problem(path) {
                return Err(UploadError::Invalid(why));
            }
            let parts: Vec<&str> = path
                .split(['/', '\\'])
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            Ok(format!("{INBOX_DIR}/{}", parts.join("/")))
        }
    }
}
