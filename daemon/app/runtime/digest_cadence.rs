//! Digest cadence chosen by the reviewer: on `/reviewers` a reviewer sets the minutes between
//! their own digests (an admin anyone's), kept in `data_dir/digest-cadence.json` (written
//! whole and atomically, the daemon's own record). Where a reviewer chose none, their
//! `[[users]]` entry's `digest_every_min` (or the hourly default) holds. A change takes effect
//! at the next boundary of the new cadence (`digests`: boundaries are multiples of the
//! cadence since the epoch, and a boundary already digested is not digested again).
//!
//! A file that cannot be read or is not such a table is damaged, not empty: saving over it
//! would forget every reviewer's choice. While it is, digests go at the configured cadences,
//! every save is refused naming the file and what to do, and the damage is told once (error
//! log, `baton_errors_total{kind="digest_cadence_damaged"}`) and shown on `/healthz`
//! (degraded, `digest_cadence_damaged`). The file is read again at each save and health check
//! while damaged, so mending it or moving it aside takes effect without a restart.

use crate::app::App;
use crate::auth::Actor;
use crate::events::{Event, EventType};
use crate::routing::User;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// The file of each reviewer's chosen cadence (minutes), in `data_dir`.
const FILE: &str = "digest-cadence.json";

/// The longest cadence: a week (the bound `users[].digest_every_min` is checked against).
pub const MAX_EVERY_MIN: u32 = 7 * 24 * 60;

/// The chosen cadences as last read or written (read on first use).
#[derive(Default)]
pub(in crate::app) struct Chosen {
    table: Mutex<Option<Loaded>>,
}

/// The file as read: its table, or why it could not be read (then the table is empty and
/// must not be saved over the file).
struct Loaded {
    table: BTreeMap<String, u32>,
    damaged: Option<String>,
}

/// What `/healthz` says of a damaged `digest-cadence.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CadenceDamage {
    pub file: String,
    pub why: String,
    /// What the daemon does meanwhile and what the operator can do.
    pub action: &'static str,
}

const ACTION: &str = "digests go out at the configured cadences (digest_every_min) and no \
    cadence can be saved; mend the file (a JSON object of reviewer name to minutes) to keep \
    the reviewers' choices, or move it aside to forget them all";

/// A reviewer's cadence as `/reviewers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Cadence {
    pub name: String,
    /// Minutes between their digests now.
    pub every_min: u32,
    /// What the configuration says (`digest_every_min`, else hourly): what holds without a
    /// choice.
    pub configured_min: u32,
    /// Whether the reviewer (or an admin) chose `every_min` on `/reviewers`.
    pub chosen: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CadenceError {
    #[error("agent tokens have no digests; sign in as a reviewer")]
    NotReviewer,
    #[error("{who} cannot {verb} {name}'s digest cadence: only {name} or an admin may")]
    Forbidden {
        who: String,
        name: String,
        /// "see" or "change".
        verb: &'static str,
    },
    #[error("no reviewer \"{0}\" with an email address in the configuration (digests go by mail)")]
    NoSuchReviewer(String),
    #[error(
        "a digest cadence must be 1 to {max} minutes (1440 is daily, 10080 weekly); it was \"{0}\"",
        max = MAX_EVERY_MIN
    )]
    OutOfRange(String),
    #[error(
        "{name}'s digest cadence was not saved: {file} is damaged ({why}) and saving would \
         overwrite every reviewer's choice kept there; digests go out at the configured \
         cadences meanwhile. An operator must mend the file (a JSON object of reviewer name \
         to minutes) or move it aside (forgetting every choice); then save again"
    )]
    Damaged {
        name: String,
        file: String,
        why: String,
    },
    #[error(
        "cannot record {name}'s digest cadence in {file}, nothing was changed; try again: {source}"
    )]
    Io {
        name: String,
        file: String,
        source: std::io::Error,
    },
}

/// The table in `file` (none chosen when there is no file), or why it cannot be read.
fn read_table(file: &std::path::Path) -> Result<BTreeMap<String, u32>, String> {
    match std::fs::read(file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.to_string()),
    }
}

impl App {
    fn cadence_file(&self) -> PathBuf {
        self.config().data_dir.join(FILE)
    }

    /// The chosen cadences as the file holds them; a file that cannot be read or parsed is
    /// damaged (told once here), read as none chosen so the configuration's cadences hold.
    fn read_chosen(&self) -> Loaded {
        let file = self.cadence_file();
        match read_table(&file) {
            Ok(table) => Loaded {
                table,
                damaged: None,
            },
            Err(why) => {
                self.metrics().error("digest_cadence_damaged");
                tracing::error!(file = %file.display(), %why, action = ACTION, "the reviewers' chosen digest cadences cannot be read");
                Loaded {
                    table: BTreeMap::new(),
                    damaged: Some(why),
                }
            }
        }
    }

    fn with_chosen<T>(&self, f: impl FnOnce(&mut Loaded) -> T) -> T {
        let chosen = &self.inner.runtime.digests.chosen;
        let mut loaded = chosen.table.lock().unwrap_or_else(|e| e.into_inner());
        f(loaded.get_or_insert_with(|| self.read_chosen()))
    }

    /// Reads a damaged file again (it may have been mended or moved aside); told again only
    /// when it is still damaged for another reason.
    fn reread_if_damaged(&self, loaded: &mut Loaded) {
        let Some(was) = loaded.damaged.clone() else {
            return;
        };
        let file = self.cadence_file();
        match read_table(&file) {
            Ok(table) => {
                tracing::info!(file = %file.display(), reviewers = table.len(), "the chosen digest cadences read sound again");
                *loaded = Loaded {
                    table,
                    damaged: None,
                };
            }
            Err(why) if why == was => {}
            Err(_) => *loaded = self.read_chosen(),
        }
    }

    /// Why `digest-cadence.json` is damaged, if it is (read again first): for `/healthz`.
    pub fn digest_cadence_damage(&self) -> Option<CadenceDamage> {
        self.with_chosen(|l| {
            self.reread_if_damaged(l);
            l.damaged.clone()
        })
        .map(|why| CadenceDamage {
            file: self.cadence_file().display().to_string(),
            why,
            action: ACTION,
        })
    }

    /// Minutes between `user`'s digests: their choice, else the configuration's.
    pub(in crate::app) fn digest_every_min(&self, user: &User) -> u32 {
        self.with_chosen(|l| l.table.get(&user.name).copied())
            .filter(|m| (1..=MAX_EVERY_MIN).contains(m))
            .unwrap_or_else(|| user.digest_every_min())
    }

    fn cadence_of(&self, user: &User) -> Cadence {
        let chosen = self.with_chosen(|l| l.table.contains_key(&user.name));
        Cadence {
            name: user.name.clone(),
            every_min: self.digest_every_min(user),
            configured_min: user.digest_every_min(),
            chosen,
        }
    }

    /// The cadences `actor` may see and change: their own, or every mailed reviewer's for an
    /// admin. Empty for a reviewer with no email address (no digest is mailed to them).
    pub fn digest_cadences(&self, actor: &Actor) -> Result<Vec<Cadence>, CadenceError> {
        let Actor::Reviewer { name, roles } = actor else {
            return Err(CadenceError::NotReviewer);
        };
        let admin = roles.iter().any(|r| r == "admin");
        Ok(self
            .config()
            .users
            .iter()
            .filter(|u| u.email.is_some() && (admin || u.name == *name))
            .map(|u| self.cadence_of(u))
            .collect())
    }

    /// `name`'s cadence as `actor` may see it: their own, or anyone's for an admin.
    pub fn digest_cadence(&self, actor: &Actor, name: &str) -> Result<Cadence, CadenceError> {
        let Actor::Reviewer { name: who, roles } = actor else {
            return Err(CadenceError::NotReviewer);
        };
        if who != name && !roles.iter().any(|r| r == "admin") {
            return Err(CadenceError::Forbidden {
                who: who.clone(),
                name: name.to_string(),
                verb: "see",
            });
        }
        let config = self.config();
        // Any configured person's, mailed or not: what would hold were they given an address.
        config
            .users
            .iter()
            .find(|u| u.name == name)
            .map(|u| self.cadence_of(u))
            .ok_or_else(|| CadenceError::NoSuchReviewer(name.to_string()))
    }

    /// `actor` sets `name`'s digest cadence to `every_min` minutes (as typed; 1 to a week).
    /// Their own, or anyone's for an admin. Saved before it is used; `digest.cadence_changed`
    /// is told to people's event streams (it is about no workspace).
    pub fn set_digest_cadence(
        &self,
        actor: &Actor,
        name: &str,
        every_min: &str,
    ) -> Result<Cadence, CadenceError> {
        let Actor::Reviewer { name: who, roles } = actor else {
            return Err(CadenceError::NotReviewer);
        };
        let admin = roles.iter().any(|r| r == "admin");
        if who != name && !admin {
            return Err(CadenceError::Forbidden {
                who: who.clone(),
                name: name.to_string(),
                verb: "change",
            });
        }
        let minutes: u32 = every_min
            .trim()
            .parse()
            .ok()
            .filter(|m| (1..=MAX_EVERY_MIN).contains(m))
            .ok_or_else(|| CadenceError::OutOfRange(every_min.trim().to_string()))?;
        let config = self.config();
        let Some(user) = config
            .users
            .iter()
            .find(|u| u.name == name && u.email.is_some())
        else {
            return Err(CadenceError::NoSuchReviewer(name.to_string()));
        };
        let before = self.digest_every_min(user);
        let file = self.cadence_file();
        self.with_chosen(|l| {
            self.reread_if_damaged(l);
            if let Some(why) = &l.damaged {
                return Err(CadenceError::Damaged {
                    name: name.to_string(),
                    file: file.display().to_string(),
                    why: why.clone(),
                });
            }
            let mut next = l.table.clone();
            next.insert(name.to_string(), minutes);
            let bytes = serde_json::to_vec_pretty(&next).expect("a map of numbers serializes");
            let kind = crate::workspace::fsync::Kind::Other;
            crate::workspace::write_atomic(&file, &bytes, kind).map_err(|source| {
                CadenceError::Io {
                    name: name.to_string(),
                    file: file.display().to_string(),
                    source,
                }
            })?;
            l.table = next;
            Ok(())
        })?;
        tracing::info!(reviewer = name, by = %who, from = before, to = minutes, "digest cadence changed");
        let data = serde_json::json!({
            "reviewer": name, "by": who, "every_min": minutes, "was_min": before,
        });
        // About no workspace: told to subscribers (SSE) and the metrics, kept in data_dir.
        let event = Event::new(EventType::DigestCadenceChanged, "", None, data);
        let label = crate::metrics::TypeLabel {
            r#type: event.kind.as_str().into(),
        };
        self.metrics().events.get_or_create(&label).inc();
        self.inner.commit.broadcast(event);
        Ok(self.cadence_of(user))
    }
}
