//! Reviewers' registered passkeys, the document `passkeys/credentials.json`
//! (`crate::store::documents`): one daemon's is the file of that name in data_dir, as before;
//! a cluster's is a row every node reads, so a passkey registered through one node confirms an
//! approval on any other. Read at each use and changed whole under the document's change lock
//! (a cluster's row lock): a registration, a removal and the counter an assertion moves are
//! each one read-modify-write that no other node's change can interleave with, so none is lost.
//! Only public keys and counters are kept: nothing here signs anything. Never in a workspace,
//! where agents could write.
//!
//! An empty document, or one that is not a list of passkeys, is damage: refused, naming where
//! it is, and never read as "no passkeys" (that would let a first passkey be registered with
//! the password alone, by whoever holds a reviewer's session and password) nor saved over.

use crate::store::documents::Documents;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use webauthn_rs::prelude::{AuthenticationResult, Passkey};

/// The document's name (a path under data_dir for one daemon).
pub const DOCUMENT: &str = "passkeys/credentials.json";

/// Most passkeys one reviewer keeps (devices, password managers).
pub const MAX_PER_REVIEWER: usize = 10;

/// One registered passkey.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stored {
    /// The credential id, base64url (as the browser names it).
    pub id: String,
    /// What the reviewer called it ("laptop", "phone").
    pub label: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
    /// The public key and signature counter webauthn-rs checks assertions against.
    pub passkey: Passkey,
}

/// The id a credential is known by: base64url of its raw id.
pub fn id_of(passkey: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode(passkey.cred_id().as_ref() as &[u8])
}

/// The id of the credential that made an assertion.
pub fn id_of_result(result: &AuthenticationResult) -> String {
    URL_SAFE_NO_PAD.encode(result.cred_id().as_ref() as &[u8])
}

type All = BTreeMap<String, Vec<Stored>>;

/// What an assertion's use did to the kept passkey.
pub enum Used {
    /// Its label.
    Taken(String),
    /// No longer registered (removed while the ceremony ran: the assertion proves nothing).
    Gone,
    /// Its signature counter did not move past the one kept (by now, on any node): a copy of
    /// the authenticator, or an answer made before the last one counted.
    Behind { kept: u32, presented: u32 },
}

/// What a registration did.
pub enum Added {
    Kept,
    /// The credential is registered already (by anyone).
    Duplicate,
}

pub struct Credentials {
    documents: Arc<dyn Documents>,
}

/// A passkey's signature counter as webauthn-rs keeps it (not otherwise exposed; 0 for the
/// many authenticators that keep none).
fn counter_of(passkey: &Passkey) -> u32 {
    serde_json::to_value(passkey)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64())
        .map_or(0, |c| c as u32)
}

impl Credentials {
    pub fn new(documents: Arc<dyn Documents>) -> Credentials {
        Credentials { documents }
    }

    fn parse(&self, bytes: Option<&[u8]>) -> io::Result<All> {
        let Some(bytes) = bytes else {
            return Ok(All::new());
        };
        serde_json::from_slice(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a list of passkeys ({e}); nobody's passkey is read or changed until it is mended (restore it, or delete it to start with none: reviewers then register theirs again on /reviewers/passkeys)",
                    self.documents.place(DOCUMENT)
                ),
            )
        })
    }

    /// Every reviewer's passkeys, as saved last.
    pub fn all(&self) -> io::Result<All> {
        self.parse(self.documents.read(DOCUMENT)?.as_deref())
    }

    /// Applies `edit` to the saved passkeys under the document's lock; saves them when it
    /// answers `true`.
    fn change(&self, edit: &mut (dyn FnMut(&mut All) -> bool + Send)) -> io::Result<()> {
        self.documents.change(DOCUMENT, &mut |now| {
            let mut all = self.parse(now)?;
            if !edit(&mut all) {
                return Ok(None);
            }
            all.retain(|_, keys| !keys.is_empty());
            Ok(Some(
                serde_json::to_vec_pretty(&all).map_err(io::Error::other)?,
            ))
        })
    }

    /// `reviewer`'s passkeys, oldest first.
    pub fn of(&self, reviewer: &str) -> io::Result<Vec<Stored>> {
        Ok(self.all()?.remove(reviewer).unwrap_or_default())
    }

    /// Keeps a new passkey of `reviewer`, unless anyone registered that credential already;
    /// past the limit their oldest is dropped.
    pub fn add(&self, reviewer: &str, key: Stored) -> io::Result<Added> {
        let mut added = Added::Kept;
        let mut key = Some(key);
        self.change(&mut |all| {
            let Some(key) = key.take() else {
                return false;
            };
            // A credential is one person's: never a second registration of it, by anyone.
            if all.values().flatten().any(|k| k.id == key.id) {
                added = Added::Duplicate;
                return false;
            }
            let mine = all.entry(reviewer.to_string()).or_default();
            mine.push(key);
            if mine.len() > MAX_PER_REVIEWER {
                mine.remove(0);
            }
            true
        })?;
        Ok(added)
    }

    /// Forgets passkey `id` of `reviewer`; whether it was kept.
    pub fn remove(&self, reviewer: &str, id: &str) -> io::Result<bool> {
        let mut removed = false;
        self.change(&mut |all| {
            let Some(mine) = all.get_mut(reviewer) else {
                return false;
            };
            let before = mine.len();
            mine.retain(|k| k.id != id);
            removed = mine.len() < before;
            removed
        })?;
        Ok(removed)
    }

    /// Takes a verified assertion's counter, backup state and time of use into `reviewer`'s
    /// passkey, as saved now (another node may have counted one since the ceremony started).
    pub fn used(
        &self,
        reviewer: &str,
        result: &AuthenticationResult,
        at: &str,
    ) -> io::Result<Used> {
        let id = id_of_result(result);
        let mut used = Used::Gone;
        self.change(&mut |all| {
            let Some(key) = all
                .get_mut(reviewer)
                .and_then(|keys| keys.iter_mut().find(|k| k.id == id))
            else {
                used = Used::Gone;
                return false;
            };
            let kept = counter_of(&key.passkey);
            if result.counter() != 0 && result.counter() <= kept {
                used = Used::Behind {
                    kept,
                    presented: result.counter(),
                };
                return false;
            }
            key.passkey.update_credential(result);
            key.last_used_at = Some(at.to_string());
            used = Used::Taken(key.label.clone());
            true
        })?;
        Ok(used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::documents::InDataDir;

    #[test]
    fn a_damaged_document_is_refused_named_and_never_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::new(Arc::new(InDataDir::new(dir.path())));
        assert!(credentials.of("rita").unwrap().is_empty(), "none yet");
        let file = dir.path().join(DOCUMENT);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        for damage in [&b""[..], b"[1, 2]"] {
            std::fs::write(&file, damage).unwrap();
            let err = credentials.of("rita").unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("not a list of passkeys"), "{err}");
            assert!(err.to_string().contains(DOCUMENT), "{err}");
            assert!(credentials.remove("rita", "x").is_err());
            assert_eq!(std::fs::read(&file).unwrap(), damage);
        }
    }
}
