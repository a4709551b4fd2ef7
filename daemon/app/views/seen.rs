//! What each reviewer last saw of each handoff (its revision and approvals when they opened
//! its page), so the queue can mark what changed since they looked. Kept in
//! `data_dir/seen.json`, beside the sessions: the daemon's own record, never the workspace's.
//! Written when a look changes it (a first look, or one after a revision or an approval), so
//! a reviewer reloading a page writes nothing. In a cluster the marks are rows every node
//! reads (`crate::store::people`), so a look on one node shows on all.

use crate::app::views::query::Summary;
use crate::app::App;
use crate::store::people::People;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Handoffs remembered per reviewer; past it the longest-unlooked are forgotten (and marked
/// new again, which is what they are to a memory that old).
const MAX_PER_REVIEWER: usize = 10_000;

/// One reviewer's last look at one handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Glance {
    revision: u32,
    approvals: usize,
    /// Seconds since the epoch, to forget the oldest first.
    at: u64,
}

/// What changed in a pending handoff since the reviewer last opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum SinceSeen {
    /// Never opened by this reviewer.
    New,
    /// Revised since: they saw revision `seen`.
    Revised { seen: u32 },
    /// More approvals since (someone else approved or signed off).
    Approved { seen: usize },
}

type Table = HashMap<String, HashMap<String, Glance>>;

pub(in crate::app) struct Seen {
    file: PathBuf,
    table: Mutex<Table>,
    /// In a cluster: the marks every node reads (the file and table are then unused).
    shared: Option<Arc<dyn People>>,
}

impl Seen {
    /// The table saved in `data_dir` (a missing or unreadable file: nobody saw anything).
    pub fn open(data_dir: &Path) -> Seen {
        let file = data_dir.join("seen.json");
        let table = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Seen {
            file,
            table: Mutex::new(table),
            shared: None,
        }
    }

    /// A cluster's marks, kept in its database: a look on one node shows on every node's
    /// queue.
    pub fn shared(data_dir: &Path, people: Arc<dyn People>) -> Seen {
        Seen {
            shared: Some(people),
            ..Seen::open(data_dir)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `name`'s look at `key`; saves the table when that changed it.
    fn look(&self, name: &str, key: &str, revision: u32, approvals: usize) {
        if let Some(people) = &self.shared {
            // As with the file: losing a look only marks the handoff new again.
            if let Err(e) = people.look(name, key, (revision, approvals)) {
                tracing::warn!(name, key, error = %e, "cannot save what a reviewer saw");
            }
            return;
        }
        let bytes = {
            let mut table = self.lock();
            let mine = table.entry(name.to_string()).or_default();
            let before = mine.get(key).map(|g| (g.revision, g.approvals));
            if before == Some((revision, approvals)) {
                return;
            }
            let at = crate::clock::now_s();
            mine.insert(
                key.to_string(),
                Glance {
                    revision,
                    approvals,
                    at,
                },
            );
            if mine.len() > MAX_PER_REVIEWER {
                forget_oldest(mine);
            }
            match serde_json::to_vec(&*table) {
                Ok(b) => b,
                Err(_) => return,
            }
        };
        // Losing this file only marks handoffs new again: a warning, not a failed page.
        let kind = crate::workspace::fsync::Kind::Other;
        if let Err(e) = crate::workspace::write_atomic(&self.file, &bytes, kind) {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot save what reviewers saw");
        }
    }
}

fn forget_oldest(mine: &mut HashMap<String, Glance>) {
    let mut ats: Vec<u64> = mine.values().map(|g| g.at).collect();
    ats.sort_unstable();
    let cut = ats[mine.len() - MAX_PER_REVIEWER - 1];
    mine.retain(|_, g| g.at > cut);
}

impl App {
    /// Notes that reviewer `name` opened handoff `key`'s page, as it is now.
    pub fn mark_seen(&self, name: &str, key: &str) {
        let Some(ws) = self.ws_of_key(key) else {
            return;
        };
        let seen = {
            let st = ws.lock();
            st.records
                .get(key)
                .map(|r| (r.meta.revision, r.review.approvals.len()))
        };
        if let Some((revision, approvals)) = seen {
            self.inner.views.seen.look(name, key, revision, approvals);
        }
    }

    /// For each of `lines`, what changed since reviewer `name` last opened it; `None` for
    /// one unchanged since, or decided (the queue marks only what still waits).
    pub fn since_seen(&self, name: &str, lines: &[&Summary]) -> Vec<Option<SinceSeen>> {
        let shared = self.inner.views.seen.shared.as_ref().map(|people| {
            let keys: Vec<&str> = lines.iter().map(|s| s.key.as_str()).collect();
            // Unreadable, nothing is marked: the queue still shows every line.
            people.seen(name, &keys).map_err(|e| {
                tracing::warn!(name, error = %e, "cannot read what a reviewer saw");
            })
        });
        let table = self.inner.views.seen.lock();
        let mine = table.get(name);
        lines
            .iter()
            .map(|s| {
                if s.state != "pending" {
                    return None;
                }
                let glimpse = match &shared {
                    Some(Ok(seen)) => seen.get(&s.key).copied(),
                    Some(Err(())) => return None,
                    None => mine
                        .and_then(|m| m.get(&s.key))
                        .map(|g| (g.revision, g.approvals)),
                };
                let Some((revision, approvals)) = glimpse else {
                    return Some(SinceSeen::New);
                };
                if s.revision > revision {
                    Some(SinceSeen::Revised { seen: revision })
                } else if s.revision == revision && s.approvals > approvals {
                    Some(SinceSeen::Approved { seen: approvals })
                } else {
                    None
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{forget_oldest, Glance, MAX_PER_REVIEWER};
    use std::collections::HashMap;

    #[test]
    fn past_the_cap_the_longest_unlooked_are_forgotten() {
        let mut mine: HashMap<String, Glance> = (0..=MAX_PER_REVIEWER as u64)
            .map(|i| {
                (
                    format!("k{i}"),
                    Glance {
                        revision: 1,
                        approvals: 0,
                        at: i,
                    },
                )
            })
            .collect();
        forget_oldest(&mut mine);
        assert_eq!(mine.len(), MAX_PER_REVIEWER);
        assert!(!mine.contains_key("k0") && mine.contains_key("k1"));
    }
}
