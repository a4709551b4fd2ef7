//! Reviewers away: a reviewer says they are out (and back), so that routes that assign work
//! (see `assign`) pass them over, and what was assigned to them moves on. Kept in
//! `data_dir/away.json`, the daemon's own record (a workspace never says who is away), and
//! written durably: it is a person's statement, and a restart must not send them work. In a
//! cluster the marks are rows every node reads (`crate::store::people`).

use crate::app::review::Cx;
use crate::auth::Actor;
use crate::store::people::People;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A reviewer's presence: the answer of `GET` and `POST /api/v1/me/away`.
#[derive(Debug, Clone, Serialize)]
pub struct Presence {
    pub name: String,
    pub away: bool,
    /// Since when they are away (RFC 3339); absent when they are not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AwayError {
    #[error("agent tokens are not people: only a reviewer can be away")]
    NotReviewer,
    #[error("cannot record that {name} is {state}, nothing was changed; try again: {source}")]
    Io {
        name: String,
        state: &'static str,
        source: std::io::Error,
    },
}

/// Name -> since when (RFC 3339).
type Table = BTreeMap<String, String>;

pub(in crate::app) struct Away {
    file: PathBuf,
    table: Mutex<Table>,
    /// In a cluster: the marks every node reads (the file and table are then unused).
    shared: Option<Arc<dyn People>>,
}

impl Away {
    /// The marks saved in `data_dir` (a missing file: nobody is away). A file that cannot be
    /// read is reported and taken as nobody away: the daemon must start, and an away mark
    /// lost sends work to someone who can still decline it.
    pub fn open(data_dir: &Path) -> Away {
        let file = data_dir.join("away.json");
        let table = match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "cannot read who is away; taking nobody as away");
                Table::default()
            }),
            Err(_) => Table::default(),
        };
        Away {
            file,
            table: Mutex::new(table),
            shared: None,
        }
    }

    /// The marks of a cluster, kept in its database: set on one node, they hold on all.
    pub fn shared(data_dir: &Path, people: Arc<dyn People>) -> Away {
        Away {
            shared: Some(people),
            ..Away::open(data_dir)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_away(&self, name: &str) -> bool {
        self.since(name).is_some()
    }

    pub fn since(&self, name: &str) -> Option<String> {
        let Some(people) = &self.shared else {
            return self.lock().get(name).cloned();
        };
        // Unreadable, a reviewer counts as present: work sent to them can still be declined,
        // and the database being down stops assignments' claims anyway.
        people.away_since(name).unwrap_or_else(|e| {
            tracing::warn!(name, error = %e, "cannot read whether a reviewer is away");
            None
        })
    }

    /// Marks `name` away (or back) and saves the table; unchanged when it already says so.
    fn set(&self, name: &str, away: bool) -> std::io::Result<()> {
        if let Some(people) = &self.shared {
            let since = away.then(crate::clock::now_rfc3339);
            return people.set_away(name, since.as_deref());
        }
        let mut table = self.lock();
        if table.contains_key(name) == away {
            return Ok(());
        }
        let mut next = table.clone();
        match away {
            true => next.insert(name.to_string(), crate::clock::now_rfc3339()),
            false => next.remove(name),
        };
        let bytes = serde_json::to_vec_pretty(&next)?;
        let kind = crate::workspace::fsync::Kind::Other;
        crate::workspace::write_atomic(&self.file, &bytes, kind)?;
        *table = next;
        Ok(())
    }
}

impl Cx<'_> {
    /// Whether `actor` is away now.
    pub fn presence(&self, actor: &Actor) -> Result<Presence, AwayError> {
        let Actor::Reviewer { name, .. } = actor else {
            return Err(AwayError::NotReviewer);
        };
        Ok(self.presence_of(name))
    }

    /// `actor` marks themselves away (`away`) or back. Going away moves on what the routes
    /// assigned to them: their workspaces are made due at once, and the assignment check
    /// reassigns (see `assign`).
    pub fn set_away(&self, actor: &Actor, away: bool) -> Result<Presence, AwayError> {
        let Actor::Reviewer { name, .. } = actor else {
            return Err(AwayError::NotReviewer);
        };
        let state = if away { "away" } else { "back" };
        self.common
            .away
            .set(name, away)
            .map_err(|source| AwayError::Io {
                name: name.clone(),
                state,
                source,
            })?;
        if away {
            self.move_on_from(name);
        }
        Ok(self.presence_of(name))
    }

    /// Makes the workspaces holding what the routes assigned to `name` due at once, so the
    /// assignment check moves it on (see `assign`). In a cluster, also on the other nodes:
    /// woken by the mark's notification, or at their next lease round (`catch_up_away`).
    pub(in crate::app) fn move_on_from(&self, name: &str) {
        for ws in self.common.rota.assigned_to(name) {
            self.common.agenda.now(&ws);
        }
    }

    /// What this node assigned to someone marked away on another node moves on: every
    /// lease round reads the marks of this node's assignees (one primary-key `SELECT` each),
    /// so a lost wake-up costs a round's wait, never the move.
    pub(in crate::app) fn catch_up_away(&self) {
        for name in self.common.rota.assignees() {
            if self.common.away.is_away(&name) {
                self.move_on_from(&name);
            }
        }
    }

    fn presence_of(&self, name: &str) -> Presence {
        let since = self.common.away.since(name);
        Presence {
            name: name.to_string(),
            away: since.is_some(),
            since,
        }
    }
}
