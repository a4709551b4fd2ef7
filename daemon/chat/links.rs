//! Chat accounts linked to baton users by an admin (beside `[[chat]] users` in the
//! configuration): `data_dir/chat/links.json`, the daemon's own record (written whole and
//! atomically at each change, owner-only, never where agents write), held in memory so a link
//! or an unlink holds at the next click without a restart. Each change is also appended to
//! `data_dir/chat/links.jsonl` (who, when, what), synced before it is answered.
//!
//! A link names a Slack user id, which is the same person in every Slack entry of the
//! daemon; the entry's own `users` come first (see `App::chat_links`).
//!
//! An admin's link starts `unconfirmed` and decides nothing until the baton user it names,
//! signed in to baton, confirms it from the direct message sent to that Slack account
//! (`chat::link_confirm`): a Slack click alone proves only that the account's holder agrees,
//! so an admin who linked their own Slack id to someone else could confirm it and decide as
//! them. A link kept without a state (written before links
//! were confirmed) reads as unconfirmed. A file that cannot be read or parsed is never taken
//! as "no links" and saved over: every change is refused until the operator mends it.

use crate::workspace::fsync::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Whether the Slack user has confirmed an admin's link from Slack.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Made by an admin, not yet confirmed by the Slack user: decides nothing. A link kept
    /// without a state reads so.
    #[default]
    Unconfirmed,
    /// Confirmed by the baton user it names, signed in, from the Slack account's direct
    /// message.
    Confirmed,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Unconfirmed => "unconfirmed",
            LinkState::Confirmed => "confirmed",
        }
    }
}

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
    #[serde(default)]
    pub state: LinkState,
    /// Names this link in its confirmation buttons: a new link of the same chat user has a
    /// new nonce, so the buttons of an earlier one confirm nothing.
    #[serde(default)]
    pub nonce: String,
    /// When the confirmation message was answered by Slack (None: not yet sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<String>,
}

impl Link {
    /// A new, unconfirmed link of `chat_user` to `user` by admin `by`, now.
    pub fn new(chat_user: &str, user: &str, by: &str) -> Link {
        Link {
            chat_user: chat_user.to_string(),
            user: user.to_string(),
            linked_by: by.to_string(),
            linked_at: crate::clock::now_rfc3339(),
            state: LinkState::Unconfirmed,
            nonce: new_nonce(),
            asked_at: None,
            confirmed_at: None,
        }
    }
}

fn new_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
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

#[derive(Debug, thiserror::Error)]
pub enum LinksError {
    #[error("{file} cannot be read ({why}); baton keeps no links from it and will not save over it. Mend the file (a JSON array of links) or move it away, then restart the daemon; nothing changed")]
    Damaged { file: String, why: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why a confirmation click changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("this Slack account is no longer linked by an admin")]
    NotLinked,
    #[error(
        "this message is for an earlier link of this Slack account; only the latest message counts"
    )]
    Replaced,
    #[error("this link is already confirmed")]
    AlreadyConfirmed,
}

pub struct Links {
    file: PathBuf,
    journal: PathBuf,
    table: Mutex<BTreeMap<String, Link>>,
    /// Why the file could not be read, when it could not: nothing is saved over it.
    damaged: Option<String>,
}

impl Links {
    /// The links saved in `data_dir` (none when the file is missing). A file that cannot be
    /// read or parsed is reported (`damaged`) and nothing is saved over it; links kept before
    /// they had nonces get theirs now.
    pub fn open(data_dir: &Path) -> Links {
        let file = data_dir.join("chat").join("links.json");
        let read = match std::fs::read(&file) {
            Ok(b) => serde_json::from_slice::<Vec<Link>>(&b)
                .map(|v| v.into_iter().map(|l| (l.chat_user.clone(), l)).collect())
                .map_err(|e| format!("not a JSON array of links: {e}")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.to_string()),
        };
        let (mut table, damaged) = match read {
            Ok(t) => (t, None),
            Err(why) => {
                tracing::error!(file = %file.display(), error = %why, "cannot read the chat account links; none are trusted, and no change is saved over the file until it is mended or moved away");
                (BTreeMap::new(), Some(why))
            }
        };
        let links = Links {
            journal: data_dir.join("chat").join("links.jsonl"),
            file,
            table: Mutex::new(BTreeMap::new()),
            damaged,
        };
        let mut migrated = 0;
        for l in table.values_mut().filter(|l| l.nonce.is_empty()) {
            l.nonce = new_nonce();
            migrated += 1;
        }
        if migrated > 0 {
            tracing::warn!(file = %links.file.display(), migrated, "chat account links kept without a state are unconfirmed until each Slack user confirms theirs");
            if let Err(e) = links.save(&table) {
                tracing::error!(file = %links.file.display(), error = %e, "cannot save the chat account links' new nonces");
            }
        }
        *links.lock() = table;
        links
    }

    /// The file, and why it cannot be read, when it cannot.
    pub fn damaged(&self) -> Option<(String, String)> {
        self.damaged
            .as_ref()
            .map(|why| (self.file.display().to_string(), why.clone()))
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Link>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The link of `chat_user`, if an admin made one.
    pub fn get(&self, chat_user: &str) -> Option<Link> {
        self.lock().get(chat_user).cloned()
    }

    /// The baton user `chat_user` is linked to here, confirmed or not.
    pub fn user_of(&self, chat_user: &str) -> Option<String> {
        self.lock().get(chat_user).map(|l| l.user.clone())
    }

    /// Every link, by chat user id.
    pub fn all(&self) -> Vec<Link> {
        self.lock().values().cloned().collect()
    }

    /// Refused when the file was damaged at start: nothing is read from it or saved over it.
    pub fn sound(&self) -> Result<(), LinksError> {
        match self.damaged() {
            Some((file, why)) => Err(LinksError::Damaged { file, why }),
            None => Ok(()),
        }
    }

    /// Changes the table with `change` and saves it; unchanged in memory when it cannot be
    /// saved, and refused when the file was damaged at start.
    fn change<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Link>) -> T,
    ) -> Result<T, LinksError> {
        self.sound()?;
        let mut table = self.lock();
        let mut next = table.clone();
        let out = change(&mut next);
        self.save(&next)?;
        *table = next;
        Ok(out)
    }

    /// Links `link.chat_user` to `link.user` (replacing its link, if any); the link it
    /// replaced.
    pub fn put(&self, link: Link) -> Result<Option<Link>, LinksError> {
        let before = self.change(|t| t.insert(link.chat_user.clone(), link.clone()))?;
        self.record(
            "chat.account_linked",
            &link.chat_user,
            &link.user,
            &link.linked_by,
        );
        Ok(before)
    }

    /// Unlinks `chat_user`, by `by`; the link removed, if there was one.
    pub fn remove(&self, chat_user: &str, by: &str) -> Result<Option<Link>, LinksError> {
        self.sound()?;
        if self.get(chat_user).is_none() {
            return Ok(None);
        }
        let gone = self.change(|t| t.remove(chat_user))?;
        if let Some(g) = &gone {
            self.record("chat.account_unlinked", chat_user, &g.user, by);
        }
        Ok(gone)
    }

    /// Notes that the confirmation message of the link with `nonce` was posted.
    pub fn asked(&self, chat_user: &str, nonce: &str) -> Result<(), LinksError> {
        self.change(|t| {
            if let Some(l) = t.get_mut(chat_user).filter(|l| l.nonce == nonce) {
                l.asked_at = Some(crate::clock::now_rfc3339());
            }
        })
    }

    /// The link of `chat_user` whose buttons carry `nonce`, when it waits for confirmation.
    pub fn waiting(&self, chat_user: &str, nonce: &str) -> Result<Link, Stale> {
        let l = self.get(chat_user).ok_or(Stale::NotLinked)?;
        if l.nonce != nonce {
            return Err(Stale::Replaced);
        }
        if l.state == LinkState::Confirmed {
            return Err(Stale::AlreadyConfirmed);
        }
        Ok(l)
    }

    /// Baton user `by` confirmed the link (the one with `nonce`): it decides from now on.
    pub fn confirm(
        &self,
        chat_user: &str,
        nonce: &str,
        by: &str,
    ) -> Result<Result<Link, Stale>, LinksError> {
        self.sound()?;
        if let Err(s) = self.waiting(chat_user, nonce) {
            return Ok(Err(s));
        }
        let done = self.change(|t| {
            let l = t.get_mut(chat_user).filter(|l| l.nonce == nonce)?;
            l.state = LinkState::Confirmed;
            l.confirmed_at = Some(crate::clock::now_rfc3339());
            Some(l.clone())
        })?;
        let Some(link) = done else {
            return Ok(Err(Stale::NotLinked));
        };
        self.record("chat.account_confirmed", chat_user, &link.user, by);
        Ok(Ok(link))
    }

    /// The Slack user said the link (the one with `nonce`) is not theirs: it is removed.
    pub fn refuse(&self, chat_user: &str, nonce: &str) -> Result<Result<Link, Stale>, LinksError> {
        self.sound()?;
        if let Err(s) = self.waiting(chat_user, nonce) {
            return Ok(Err(s));
        }
        let gone = self.change(|t| {
            if t.get(chat_user).is_some_and(|l| l.nonce == nonce) {
                t.remove(chat_user)
            } else {
                None
            }
        })?;
        let Some(link) = gone else {
            return Ok(Err(Stale::NotLinked));
        };
        self.record("chat.account_refused", chat_user, &link.user, chat_user);
        Ok(Ok(link))
    }

    /// The latest `limit` links their Slack users said were not theirs, newest first: each
    /// `{at, chat_user, user}` from the journal.
    pub fn refusals(&self, limit: usize) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        let lines = text.lines().rev();
        let read = lines.filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        read.filter(|v| v["type"] == "chat.account_refused")
            .take(limit)
            .collect()
    }

    fn save(&self, table: &BTreeMap<String, Link>) -> io::Result<()> {
        let all: Vec<&Link> = table.values().collect();
        let bytes = serde_json::to_vec_pretty(&all)?;
        crate::workspace::write_atomic(&self.file, &bytes, Kind::Other)
    }

    /// Appends `{at, type, chat_user, user, by}` to the journal; a failure is logged (the
    /// change itself is saved, and the event and log line tell it too).
    fn record(&self, kind: &str, chat_user: &str, user: &str, by: &str) {
        let line = serde_json::json!({ "at": crate::clock::now_rfc3339(), "type": kind,
            "chat_user": chat_user, "user": user, "by": by });
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
            nonce: "n1".into(),
            ..Link::new(chat_user, user, "ada")
        }
    }

    #[test]
    fn links_survive_a_restart_and_unlinking_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(dir.path());
        let l = link("U1", "rita");
        assert_eq!(links.put(l.clone()).unwrap(), None);
        assert_eq!(links.user_of("U1").as_deref(), Some("rita"));
        let again = Links::open(dir.path());
        assert_eq!(again.all(), vec![l.clone()]);
        assert_eq!(again.remove("U1", "ada").unwrap(), Some(l));
        assert_eq!(again.user_of("U1"), None);
        assert_eq!(again.remove("U1", "ada").unwrap(), None);
        assert!(Links::open(dir.path()).all().is_empty());
        let journal = std::fs::read_to_string(dir.path().join("chat/links.jsonl")).unwrap();
        assert_eq!(journal.lines().count(), 2);
    }

    #[test]
    fn a_link_is_confirmed_or_refused_only_with_its_own_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(dir.path());
        links.put(link("U1", "rita")).unwrap();
        assert_eq!(
            links.confirm("U1", "other", "rita").unwrap(),
            Err(Stale::Replaced)
        );
        assert_eq!(
            links.confirm("U2", "n1", "rita").unwrap(),
            Err(Stale::NotLinked)
        );
        let l = links.confirm("U1", "n1", "rita").unwrap().unwrap();
        assert_eq!(l.state, LinkState::Confirmed);
        assert_eq!(
            links.refuse("U1", "n1").unwrap(),
            Err(Stale::AlreadyConfirmed)
        );
        links.put(link("U2", "sam")).unwrap();
        assert!(links.refuse("U2", "n1").unwrap().is_ok());
        assert_eq!(links.get("U2"), None);
    }

    #[test]
    fn a_link_kept_without_a_state_is_unconfirmed_with_a_nonce() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("chat")).unwrap();
        let old = r#"[{"chat_user":"U1","user":"rita","linked_by":"ada","linked_at":"2026-01-01T00:00:00Z"}]"#;
        std::fs::write(dir.path().join("chat/links.json"), old).unwrap();
        let l = Links::open(dir.path()).get("U1").unwrap();
        assert_eq!(l.state, LinkState::Unconfirmed);
        assert_eq!(l.nonce.len(), 32);
        assert_eq!(
            Links::open(dir.path()).get("U1").unwrap().nonce,
            l.nonce,
            "saved"
        );
    }

    #[test]
    fn a_damaged_file_is_never_saved_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("chat")).unwrap();
        let file = dir.path().join("chat/links.json");
        std::fs::write(&file, b"[{\"chat_user\": tor").unwrap();
        let links = Links::open(dir.path());
        assert!(links.damaged().is_some());
        let err = links.put(link("U1", "rita")).unwrap_err();
        assert!(
            err.to_string().contains("links.json cannot be read"),
            "{err}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"[{\"chat_user\": tor");
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
