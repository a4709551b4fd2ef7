//! Digest cadence chosen by the reviewer: on `/reviewers` a reviewer sets the minutes between
//! their own digests (an admin anyone's), kept in `data_dir/digest-cadence.json` (written
//! whole and atomically, the daemon's own record). Where a reviewer chose none, their
//! `[[users]]` entry's `digest_every_min` (or the hourly default) holds. A change takes effect
//! at the next boundary of the new cadence (`digests`: boundaries are multiples of the
//! cadence since the epoch, and a boundary already digested is not digested again).

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
    table: Mutex<Option<BTreeMap<String, u32>>>,
}

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
    #[error("{who} cannot change {name}'s digest cadence: only {name} or an admin may")]
    Forbidden { who: String, name: String },
    #[error("no reviewer \"{0}\" with an email address in the configuration (digests go by mail)")]
    NoSuchReviewer(String),
    #[error(
        "a digest cadence must be 1 to {max} minutes (1440 is daily, 10080 weekly); it was \"{0}\"",
        max = MAX_EVERY_MIN
    )]
    OutOfRange(String),
    #[error(
        "cannot record {name}'s digest cadence in {file}, nothing was changed; try again: {source}"
    )]
    Io {
        name: String,
        file: String,
        source: std::io::Error,
    },
}

impl App {
    fn cadence_file(&self) -> PathBuf {
        self.config().data_dir.join(FILE)
    }

    /// The chosen cadences; an unreadable file is logged and read as none chosen (the
    /// configuration's cadences then hold).
    fn read_chosen(&self) -> BTreeMap<String, u32> {
        let file = self.cadence_file();
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the chosen digest cadences; using the configured ones");
                BTreeMap::new()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read the chosen digest cadences; using the configured ones");
                BTreeMap::new()
            }
        }
    }

    fn with_chosen<T>(&self, f: impl FnOnce(&mut BTreeMap<String, u32>) -> T) -> T {
        let chosen = &self.inner.runtime.digests.chosen;
        let mut table = chosen.table.lock().unwrap_or_else(|e| e.into_inner());
        f(table.get_or_insert_with(|| self.read_chosen()))
    }

    /// Minutes between `user`'s digests: their choice, else the configuration's.
    pub(in crate::app) fn digest_every_min(&self, user: &User) -> u32 {
        self.with_chosen(|t| t.get(&user.name).copied())
            .filter(|m| (1..=MAX_EVERY_MIN).contains(m))
            .unwrap_or_else(|| user.digest_every_min())
    }

    fn cadence_of(&self, user: &User) -> Cadence {
        let chosen = self.with_chosen(|t| t.contains_key(&user.name));
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
        self.with_chosen(|t| {
            let mut next = t.clone();
            next.insert(name.to_string(), minutes);
            let bytes = serde_json::to_vec_pretty(&next).expect("a map of numbers serializes");
            let kind = crate::workspace::fsync::Kind::Other;
            crate::workspace::write_atomic(&file, &bytes, kind)?;
            *t = next;
            Ok::<(), std::io::Error>(())
        })
        .map_err(|source| CadenceError::Io {
            name: name.to_string(),
            file: file.display().to_string(),
            source,
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
