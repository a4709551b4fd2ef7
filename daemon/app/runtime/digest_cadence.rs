//! Digest cadence chosen by the reviewer: on `/reviewers` a reviewer sets the minutes between
//! their own digests (an admin anyone's), kept in the document `digest-cadence.json`
//! (`crate::documents`: a file of data_dir, written whole and atomically; in a cluster
//! a row every node reads, so a choice made on one node holds on all). Where a reviewer chose
//! none, their `[[users]]` entry's `digest_every_min` (or the hourly default) holds. A change
//! takes effect at the next boundary of the new cadence (`digests`: boundaries are multiples
//! of the cadence since the epoch, and a boundary already digested is not digested again).
//!
//! A document that cannot be read or is not such a table is damaged, not empty: saving over
//! it would forget every reviewer's choice. While it is, digests go at the configured
//! cadences, every save is refused naming it and what to do, and the damage is told once
//! (error log, `baton_errors_total{kind="digest_cadence_damaged"}`) and shown on `/healthz`
//! (degraded, `digest_cadence_damaged`). It is read at each use, so mending it or moving it
//! aside takes effect without a restart.

use crate::app::App;
use crate::auth::Actor;
use crate::events::{Event, EventType};
use crate::routing::User;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// The document of each reviewer's chosen cadence (minutes).
const FILE: &str = "digest-cadence.json";

/// The longest cadence: a week (the bound `users[].digest_every_min` is checked against).
pub const MAX_EVERY_MIN: u32 = 7 * 24 * 60;

/// The damage last told (error log and metric), so that it is told once.
#[derive(Default)]
pub(in crate::app) struct Chosen {
    told: Mutex<Option<String>>,
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

/// The table of a document as read (none chosen when there is none), or why it cannot be.
fn parse(bytes: Option<&[u8]>) -> Result<BTreeMap<String, u32>, String> {
    match bytes {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        None => Ok(BTreeMap::new()),
    }
}

/// Minutes between `user`'s digests: their choice in `chosen`, else the configuration's.
pub(in crate::app) fn every_min(chosen: &BTreeMap<String, u32>, user: &User) -> u32 {
    chosen
        .get(&user.name)
        .copied()
        .filter(|m| (1..=MAX_EVERY_MIN).contains(m))
        .unwrap_or_else(|| user.digest_every_min())
}

fn cadence_of(chosen: &BTreeMap<String, u32>, user: &User) -> Cadence {
    Cadence {
        name: user.name.clone(),
        every_min: every_min(chosen, user),
        configured_min: user.digest_every_min(),
        chosen: chosen.contains_key(&user.name),
    }
}

impl App {
    /// Where the document is, for people.
    fn cadence_place(&self) -> String {
        self.inner.common.documents.place(FILE)
    }

    /// The chosen cadences, or why they cannot be read (told once per cause; a sound read
    /// after damage is told too).
    fn read_chosen(&self) -> Result<BTreeMap<String, u32>, String> {
        let read = self.inner.common.documents.read(FILE);
        let table = read
            .map_err(|e| e.to_string())
            .and_then(|b| parse(b.as_deref()));
        let chosen = &self.inner.runtime.digests.chosen;
        let mut told = chosen.told.lock().unwrap_or_else(|e| e.into_inner());
        match &table {
            Err(why) if told.as_ref() != Some(why) => {
                self.metrics().error("digest_cadence_damaged");
                tracing::error!(file = %self.cadence_place(), %why, action = ACTION, "the reviewers' chosen digest cadences cannot be read");
                *told = Some(why.clone());
            }
            Ok(table) if told.is_some() => {
                tracing::info!(file = %self.cadence_place(), reviewers = table.len(), "the chosen digest cadences read sound again");
                *told = None;
            }
            _ => {}
        }
        table
    }

    /// Why `digest-cadence.json` is damaged, if it is: for `/healthz`.
    pub fn digest_cadence_damage(&self) -> Option<CadenceDamage> {
        self.read_chosen().err().map(|why| CadenceDamage {
            file: self.cadence_place(),
            why,
            action: ACTION,
        })
    }

    /// Every reviewer's chosen cadence (none while the document is damaged: the
    /// configuration's hold), read once for a round over the reviewers.
    pub(in crate::app) fn chosen_cadences(&self) -> BTreeMap<String, u32> {
        self.read_chosen().unwrap_or_default()
    }

    /// The cadences `actor` may see and change: their own, or every mailed reviewer's for an
    /// admin. Empty for a reviewer with no email address (no digest is mailed to them).
    pub fn digest_cadences(&self, actor: &Actor) -> Result<Vec<Cadence>, CadenceError> {
        let Actor::Reviewer { name, roles } = actor else {
            return Err(CadenceError::NotReviewer);
        };
        let admin = roles.iter().any(|r| r == "admin");
        let chosen = self.chosen_cadences();
        Ok(self
            .config()
            .users
            .iter()
            .filter(|u| u.email.is_some() && (admin || u.name == *name))
            .map(|u| cadence_of(&chosen, u))
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
            .map(|u| cadence_of(&self.chosen_cadences(), u))
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
        let mut was = None;
        let mut damaged = None;
        let place = self.cadence_place();
        let saved = self.inner.common.documents.change(FILE, &mut |bytes| {
            let mut table = parse(bytes).map_err(|why| {
                damaged = Some(why.clone());
                std::io::Error::new(std::io::ErrorKind::InvalidData, why)
            })?;
            was = Some(self::every_min(&table, user));
            table.insert(name.to_string(), minutes);
            Ok(Some(serde_json::to_vec_pretty(&table)?))
        });
        if let Err(source) = saved {
            return Err(match damaged {
                Some(why) => {
                    // Tells the damage (once), as any read does.
                    let _ = self.read_chosen();
                    CadenceError::Damaged {
                        name: name.to_string(),
                        file: place,
                        why,
                    }
                }
                None => CadenceError::Io {
                    name: name.to_string(),
                    file: place,
                    source,
                },
            });
        }
        let before = was.unwrap_or_else(|| user.digest_every_min());
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
        Ok(cadence_of(&self.chosen_cadences(), user))
    }
}
