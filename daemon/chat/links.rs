//! Chat accounts linked to baton users by an admin (beside `[[chat]] users` in the
//! configuration): `data_dir/chat/links.json`, the daemon's own record (written whole and
//! atomically at each change, owner-only, never where agents write), held in memory so a link
//! or an unlink holds at the next click without a restart. Each change is also appended to
//! `data_dir/chat/links.jsonl` (who, when, what), synced before it is answered.
//!
//! A link names a Slack user id, which is the same person in every Slack entry of the
//! daemon; the entry's own `users` come first (see `App::chat_links`).

use crate::workspace::fsync::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// One link as kept and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The chat user id (`U…`).
    pub chat_user: String,
    /// The baton user (`[[users]] name`) the chat user acts as.
    pub user: String,
    /// The admin who linked it.
    pub linked_by: String,
    /// RFC 3339, UTC.
    pub linked_at: String,
}

/// The longest chat user id taken (Slack's are about 11 characters).
pub const MAX_CHAT_USER: usize = 64;

/// Whether `id` looks like a chat user id: letters, digits, `_`, `.` and `-`, at most
/// `MAX_CHAT_USER` of them (nothing to escape in a page, a log or a file).
pub fn valid_chat_user(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_CHAT_USER
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub struct Links {
    file: PathBuf,
    journal: PathBuf,
    table: Mutex<BTreeMap<String, Link>>,
}

impl Links {
    /// The links saved in `data_dir` (none when the file is missing). A file that cannot be
    /// read is reported and taken as no links: a lost link only leaves a person to the page.
    pub fn open(data_dir: &Path) -> Links {
        let file = data_dir.join("chat").join("links.json");
        let table = match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice::<Vec<Link>>(&b)
                .map(|v| v.into_iter().map(|l| (l.chat_user.clone(), l)).collect())
                .unwrap_or_else(|e| {
                    tracing::warn!(file = %file.display(), error = %e, "cannot read the chat account links; taking none as linked");
                    BTreeMap::new()
                }),
            Err(_) => BTreeMap::new(),
        };
        Links {
            journal: data_dir.join("chat").join("links.jsonl"),
            file,
            table: Mutex::new(table),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Link>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The baton user `chat_user` is linked to here.
    pub fn user_of(&self, chat_user: &str) -> Option<String> {
        self.lock().get(chat_user).map(|l| l.user.clone())
    }

    /// Every link, by chat user id.
    pub fn all(&self) -> Vec<Link> {
        self.lock().values().cloned().collect()
    }

    /// Links `link.chat_user` to `link.user` (replacing its link, if any); the link it
    /// replaced. Unchanged in memory when it cannot be saved.
    pub fn put(&self, link: Link) -> io::Result<Option<Link>> {
        let mut table = self.lock();
        let mut next = table.clone();
        let before = next.insert(link.chat_user.clone(), link.clone());
        self.save(&next)?;
        *table = next;
        self.record("chat.account_linked", &link);
        Ok(before)
    }

    /// Unlinks `chat_user`, by `by`; the link removed, if there was one.
    pub fn remove(&self, chat_user: &str, by: &str) -> io::Result<Option<Link>> {
        let mut table = self.lock();
        let mut next = table.clone();
        let Some(gone) = next.remove(chat_user) else {
            return Ok(None);
        };
        self.save(&next)?;
        *table = next;
        let mut line = gone.clone();
        line.linked_by = by.to_string();
        line.linked_at = crate::clock::now_rfc3339();
        self.record("chat.account_unlinked", &line);
        Ok(Some(gone))
    }

    fn save(&self, table: &BTreeMap<String, Link>) -> io::Result<()> {
        let all: Vec<&Link> = table.values().collect();
        let bytes = serde_json::to_vec_pretty(&all)?;
        crate::workspace::write_atomic(&self.file, &bytes, Kind::Other)
    }

    /// Appends `{at, type, chat_user, user, by}` to the journal; a failure is logged (the
    /// change itself is saved, and the event and log line tell it too).
    fn record(&self, kind: &str, link: &Link) {
        let line = serde_json::json!({ "at": link.linked_at, "type": kind,
            "chat_user": link.chat_user, "user": link.user, "by": link.linked_by });
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.journal)
            .and_then(|mut f| {
                f.write_all(format!("{line}\n").as_bytes())?;
                f.sync_data()
            });
        if let Err(e) = appended {
            tracing::error!(file = %self.journal.display(), error = %e, "cannot record a chat account link change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(chat_user: &str, user: &str) -> Link {
        Link {
            chat_user: chat_user.into(),
            user: user.into(),
            linked_by: "ada".into(),
            linked_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn links_survive_a_restart_and_unlinking_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(dir.path());
        assert_eq!(links.put(link("U1", "rita")).unwrap(), None);
        assert_eq!(links.user_of("U1").as_deref(), Some("rita"));
        let again = Links::open(dir.path());
        assert_eq!(again.all(), vec![link("U1", "rita")]);
        assert_eq!(again.remove("U1", "ada").unwrap(), Some(link("U1", "rita")));
        assert_eq!(again.user_of("U1"), None);
        assert_eq!(again.remove("U1", "ada").unwrap(), None);
        assert!(Links::open(dir.path()).all().is_empty());
        let journal = std::fs::read_to_string(dir.path().join("chat/links.jsonl")).unwrap();
        assert_eq!(journal.lines().count(), 2);
    }

    #[test]
    fn chat_user_ids_are_plain() {
        assert!(valid_chat_user("U0123ABC"));
        assert!(valid_chat_user("U_RITA"));
        assert!(!valid_chat_user(""));
        assert!(!valid_chat_user("U1<script>"));
        assert!(!valid_chat_user(&"U".repeat(65)));
    }
}
