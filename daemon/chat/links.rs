//! Chat accounts linked to baton users by an admin (beside `[[chat]] users` in the
//! configuration): the daemon's own record, one document (`crate::documents`) read at
//! each use: `data_dir/chat/links.json` for one daemon (written whole and atomically at each
//! change, owner-only, never where agents write), a row of the database for a cluster's nodes,
//! so a link made, confirmed, refused or removed on one node holds on every node at the next
//! click. Each change is also appended to `data_dir/chat/links.jsonl` (who, when, what) of
//! the node that made it, synced before it is answered.
//!
//! A link names a Slack user id and the `[[chat]]` entry (Slack workspace) it belongs to: its
//! confirmation is sent through that entry's bot (a link kept without one belongs to the
//! first Slack entry). The Slack user id is taken as the same person in every Slack entry of
//! the daemon; the entry's own `users` come first (see `App::chat_links`).
//!
//! An admin's link starts `unconfirmed` and decides nothing until the baton user it names,
//! signed in to baton, confirms it from the direct message sent to that Slack account
//! (`outbox::link_confirm`): a Slack click alone proves only that the account's holder agrees,
//! so an admin who linked their own Slack id to someone else could confirm it and decide as
//! them. A link kept without a state (written before links
//! were confirmed) reads as unconfirmed. A document that cannot be parsed is never taken as
//! "no links" and saved over: no link in it counts and every change is refused until the
//! operator mends it or moves it away.

use crate::documents::Documents;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The document of links: a file of data_dir, or a row of the cluster's.
pub const DOCUMENT: &str = "chat/links.json";

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
    /// The `[[chat]]` entry (Slack workspace) the account belongs to: its confirmation is
    /// sent through that entry. None in links kept before: the first Slack entry's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
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
    /// A new, unconfirmed link of `chat_user` (of entry `chat`) to `user` by admin `by`, now.
    pub fn new(chat: &str, chat_user: &str, user: &str, by: &str) -> Link {
        Link {
            chat_user: chat_user.to_string(),
            user: user.to_string(),
            chat: Some(chat.to_string()),
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
    #[error("{file} cannot be read ({why}); baton keeps no links from it and will not save over it. Mend it (a JSON array of links) or move it away; nothing changed")]
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
    documents: Arc<dyn Documents>,
    journal: PathBuf,
}

type Table = BTreeMap<String, Link>;

impl Links {
    /// The links kept in `documents`, changes journaled in `data_dir`; links kept before they
    /// had nonces get theirs now (under the document's lock, so once for a cluster). A
    /// document that cannot be read is reported at each use, never saved over.
    pub fn open(data_dir: &Path, documents: Arc<dyn Documents>) -> Links {
        let links = Links {
            documents,
            journal: data_dir.join("chat").join("links.jsonl"),
        };
        let migrated = links.change(|t| {
            let mut n = 0;
            for l in t.values_mut().filter(|l| l.nonce.is_empty()) {
                l.nonce = new_nonce();
                n += 1;
            }
            (n > 0).then_some(n)
        });
        match migrated {
            Ok(None) => {}
            Ok(Some(migrated)) => {
                tracing::warn!(place = %links.place(), migrated, "chat account links kept without a state are unconfirmed until each Slack user confirms theirs")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the chat account links; none are trusted, and no change is saved over them until they are mended or moved away")
            }
        }
        links
    }

    fn place(&self) -> String {
        self.documents.place(DOCUMENT)
    }

    fn parse(&self, bytes: Option<&[u8]>) -> Result<Table, LinksError> {
        let Some(b) = bytes else {
            return Ok(Table::new());
        };
        serde_json::from_slice::<Vec<Link>>(b)
            .map(|v| v.into_iter().map(|l| (l.chat_user.clone(), l)).collect())
            .map_err(|e| LinksError::Damaged {
                file: self.place(),
                why: format!("not a JSON array of links: {e}"),
            })
    }

    /// Every link, as kept now.
    fn read(&self) -> Result<Table, LinksError> {
        let bytes = self.documents.read(DOCUMENT)?;
        self.parse(bytes.as_deref())
    }

    /// Where the links are and why they cannot be parsed, when they cannot (for `/healthz`).
    pub fn damaged(&self) -> Option<(String, String)> {
        match self.read() {
            Err(LinksError::Damaged { file, why }) => Some((file, why)),
            _ => None,
        }
    }

    /// The link of `chat_user`, if an admin made one.
    pub fn get(&self, chat_user: &str) -> Result<Option<Link>, LinksError> {
        Ok(self.read()?.remove(chat_user))
    }

    /// Every link, by chat user id.
    pub fn all(&self) -> Result<Vec<Link>, LinksError> {
        Ok(self.read()?.into_values().collect())
    }

    /// Refused when the links cannot be read: nothing is read from them or saved over them.
    pub fn sound(&self) -> Result<(), LinksError> {
        self.read().map(drop)
    }

    /// Lets `change` edit the links under the lock every change takes, and saves the edit
    /// when it answers `Some` (its answer is then this one's); `None` saves nothing. Refused
    /// when the links cannot be read.
    fn change<T: Send>(
        &self,
        mut change: impl FnMut(&mut Table) -> Option<T> + Send,
    ) -> Result<Option<T>, LinksError> {
        let mut answer = None;
        let mut refused = None;
        let changed = self.documents.change(DOCUMENT, &mut |bytes| {
            let mut table = match self.parse(bytes) {
                Ok(t) => t,
                Err(e) => {
                    let said = io::Error::new(io::ErrorKind::InvalidData, e.to_string());
                    refused = Some(e);
                    return Err(said);
                }
            };
            answer = change(&mut table);
            match answer {
                Some(_) => {
                    let all: Vec<&Link> = table.values().collect();
                    Ok(Some(serde_json::to_vec_pretty(&all)?))
                }
                None => Ok(None),
            }
        });
        match (changed, refused) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
            (Ok(()), None) => Ok(answer),
        }
    }

    /// Links `link.chat_user` to `link.user` (replacing its link, if any); the link it
    /// replaced.
    pub fn put(&self, link: Link) -> Result<Option<Link>, LinksError> {
        let before = self.change(|t| Some(t.insert(link.chat_user.clone(), link.clone())))?;
        self.record(
            "chat.account_linked",
            &link.chat_user,
            &link.user,
            &link.linked_by,
        );
        Ok(before.flatten())
    }

    /// Unlinks `chat_user`, by `by`; the link removed, if there was one.
    pub fn remove(&self, chat_user: &str, by: &str) -> Result<Option<Link>, LinksError> {
        let gone = self.change(|t| t.remove(chat_user))?;
        if let Some(g) = &gone {
            self.record("chat.account_unlinked", chat_user, &g.user, by);
        }
        Ok(gone)
    }

    /// Notes that the confirmation message of the link with `nonce` was posted.
    pub fn asked(&self, chat_user: &str, nonce: &str) -> Result<(), LinksError> {
        self.change(|t| {
            let l = t.get_mut(chat_user).filter(|l| l.nonce == nonce)?;
            l.asked_at = Some(crate::clock::now_rfc3339());
            Some(())
        })
        .map(drop)
    }

    /// The link of `chat_user` whose buttons carry `nonce`, when it waits for confirmation.
    pub fn waiting(&self, chat_user: &str, nonce: &str) -> Result<Result<Link, Stale>, LinksError> {
        Ok(waiting_in(&self.read()?, chat_user, nonce))
    }

    /// Baton user `by` confirmed the link (the one with `nonce`): it decides from now on.
    /// Judged and changed under the lock, so a link replaced or removed meanwhile (on any
    /// node) is not confirmed.
    pub fn confirm(
        &self,
        chat_user: &str,
        nonce: &str,
        by: &str,
    ) -> Result<Result<Link, Stale>, LinksError> {
        let mut stale = None;
        let done = self.change(|t| match waiting_in(t, chat_user, nonce) {
            Err(s) => {
                stale = Some(s);
                None
            }
            Ok(_) => {
                let l = t.get_mut(chat_user)?;
                l.state = LinkState::Confirmed;
                l.confirmed_at = Some(crate::clock::now_rfc3339());
                Some(l.clone())
            }
        })?;
        let Some(link) = done else {
            return Ok(Err(stale.unwrap_or(Stale::NotLinked)));
        };
        self.record("chat.account_confirmed", chat_user, &link.user, by);
        Ok(Ok(link))
    }

    /// The Slack user said the link (the one with `nonce`) is not theirs: it is removed.
    pub fn refuse(&self, chat_user: &str, nonce: &str) -> Result<Result<Link, Stale>, LinksError> {
        let mut stale = None;
        let gone = self.change(|t| match waiting_in(t, chat_user, nonce) {
            Err(s) => {
                stale = Some(s);
                None
            }
            Ok(_) => t.remove(chat_user),
        })?;
        let Some(link) = gone else {
            return Ok(Err(stale.unwrap_or(Stale::NotLinked)));
        };
        self.record("chat.account_refused", chat_user, &link.user, chat_user);
        Ok(Ok(link))
    }

    /// The latest `limit` links their Slack users said were not theirs, newest first: each
    /// `{at, chat_user, user}` from this node's journal.
    pub fn refusals(&self, limit: usize) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.journal).unwrap_or_default();
        let lines = text.lines().rev();
        let read = lines.filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
        read.filter(|v| v["type"] == "chat.account_refused")
            .take(limit)
            .collect()
    }

    /// Appends `{at, type, chat_user, user, by}` to the journal; a failure is logged (the
    /// change itself is saved, and the event and log line tell it too).
    fn record(&self, kind: &str, chat_user: &str, user: &str, by: &str) {
        let line = serde_json::json!({ "at": crate::clock::now_rfc3339(), "type": kind,
            "chat_user": chat_user, "user": user, "by": by });
        let appended = self
            .journal
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.journal)
            })
            .and_then(|mut f| {
                f.write_all(format!("{line}\n").as_bytes())?;
                f.sync_data()
            });
        if let Err(e) = appended {
            tracing::error!(file = %self.journal.display(), error = %e, "cannot record a chat account link change");
        }
    }
}

/// The link of `chat_user` in `t` whose buttons carry `nonce`, when it waits for confirmation.
fn waiting_in(t: &Table, chat_user: &str, nonce: &str) -> Result<Link, Stale> {
    let l = t.get(chat_user).ok_or(Stale::NotLinked)?;
    if l.nonce != nonce {
        return Err(Stale::Replaced);
    }
    if l.state == LinkState::Confirmed {
        return Err(Stale::AlreadyConfirmed);
    }
    Ok(l.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Links {
        let documents = Arc::new(crate::documents::InDataDir::new(dir));
        Links::open(dir, documents)
    }

    fn link(chat_user: &str, user: &str) -> Link {
        Link {
            nonce: "n1".into(),
            ..Link::new("team", chat_user, user, "ada")
        }
    }

    #[test]
    fn links_survive_a_restart_and_unlinking_forgets_them() {
        let dir = tempfile::tempdir().unwrap();
        let links = open(dir.path());
        let l = link("U1", "rita");
        assert_eq!(links.put(l.clone()).unwrap(), None);
        assert_eq!(
            links.get("U1").unwrap().map(|l| l.user).as_deref(),
            Some("rita")
        );
        let again = open(dir.path());
        assert_eq!(again.all().unwrap(), vec![l.clone()]);
        assert_eq!(again.remove("U1", "ada").unwrap(), Some(l));
        assert_eq!(again.get("U1").unwrap(), None);
        assert_eq!(again.remove("U1", "ada").unwrap(), None);
        assert!(open(dir.path()).all().unwrap().is_empty());
        let journal = std::fs::read_to_string(dir.path().join("chat/links.jsonl")).unwrap();
        assert_eq!(journal.lines().count(), 2);
    }

    #[test]
    fn a_link_is_confirmed_or_refused_only_with_its_own_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let links = open(dir.path());
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
        assert_eq!(links.get("U2").unwrap(), None);
    }

    #[test]
    fn a_link_kept_without_a_state_is_unconfirmed_with_a_nonce() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("chat")).unwrap();
        let old = r#"[{"chat_user":"U1","user":"rita","linked_by":"ada","linked_at":"2026-01-01T00:00:00Z"}]"#;
        std::fs::write(dir.path().join("chat/links.json"), old).unwrap();
        let l = open(dir.path()).get("U1").unwrap().unwrap();
        assert_eq!(l.state, LinkState::Unconfirmed);
        assert_eq!(l.nonce.len(), 32);
        assert_eq!(
            open(dir.path()).get("U1").unwrap().unwrap().nonce,
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
        let links = open(dir.path());
        assert!(links.damaged().is_some());
        let err = links.put(link("U1", "rita")).unwrap_err();
        assert!(
            err.to_string().contains("links.json cannot be read"),
            "{err}"
        );
        assert!(links.get("U1").is_err(), "never read as no links");
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
