//! Reviewers' registered passkeys, the document `passkeys/credentials.json`
//! (`crate::documents`): one daemon's is the file of that name in data_dir, as before;
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

use crate::documents::{carry_own, Documents, Lists};
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
    /// Shown the password alone, while the reviewer has a passkey by now.
    NeedsPasskey,
}

/// What became of a node's own passkeys file as it joined a cluster (`carry_over`).
#[derive(Debug, PartialEq, Eq)]
pub enum Carried {
    /// The cluster had none: this many passkeys of the file are the cluster's now.
    Taken(usize),
    /// The cluster has its own: this many passkeys of the file are not among them (and are
    /// not used; their reviewers register them again).
    Left(usize),
}

pub struct Credentials {
    lists: Lists<Stored>,
}

/// Whether an answer counting `presented` is not past the count `kept` by now. An
/// authenticator that keeps no counter answers 0 and is kept at 0; once one has counted, an
/// answer must be past the count kept, and an answer of 0 then is a copy's (webauthn-rs
/// compares with the count read into the ceremony when it started, which another node's use
/// may have passed since).
fn behind(presented: u32, kept: u32) -> bool {
    (presented != 0 || kept != 0) && presented <= kept
}

/// A passkey's signature counter as webauthn-rs keeps it (not otherwise exposed; 0 for the
/// many authenticators that keep none). Read from its serialised form, so a version of the
/// crate that keeps it elsewhere must not read as 0 (which would let a copy's answers pass):
/// the count stands at `u32::MAX` then, refusing every counting authenticator's answer, and
/// the unit test `counter_of_reads_the_count_kept` fails first.
fn counter_of(passkey: &Passkey) -> u32 {
    let count = serde_json::to_value(passkey)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64());
    match count {
        Some(c) => u32::try_from(c).unwrap_or(u32::MAX),
        None => {
            tracing::error!("a passkey's signature counter cannot be read (webauthn-rs keeps it elsewhere now?): counting passkeys are refused");
            u32::MAX
        }
    }
}

impl Credentials {
    pub fn new(documents: Arc<dyn Documents>) -> Credentials {
        let mend = "nobody's passkey is read or changed until it is mended. Restore it from a \
            backup (an old backup may bring back passkeys removed since, and older signature \
            counters, so a cloned authenticator is caught later: check /reviewers/passkeys \
            after), or delete it to start with none: then every reviewer's first passkey is \
            registered again on /reviewers/passkeys with their password alone, as by anyone \
            who knows that password";
        Credentials {
            lists: Lists::new(documents, DOCUMENT, "a list of passkeys", mend),
        }
    }

    /// A node's own passkeys file (`data_dir/passkeys/credentials.json`, kept while it ran
    /// alone) taken into the cluster's document when that was never written, so the first node
    /// to join keeps its reviewers' passkeys instead of reading them as none (when a password
    /// is all a first passkey needs). Never merged into a document that exists (a passkey
    /// removed in the cluster would come back), and offered once (`documents::carry_own`):
    /// keys of the file the document lacks are counted for the log. `None` when there is no
    /// such file, or it is the document itself (one daemon).
    pub fn carry_over(&self, data_dir: &std::path::Path) -> io::Result<Option<Carried>> {
        carry_own(self.lists.documents(), data_dir, DOCUMENT, |bytes| {
            let local: All = serde_json::from_slice(bytes).map_err(|e| {
                let file = data_dir.join(DOCUMENT);
                let why = format!("{}: not a list of passkeys ({e})", file.display());
                io::Error::new(io::ErrorKind::InvalidData, why)
            })?;
            let mut carried = Carried::Left(0);
            self.lists.documents().change(DOCUMENT, &mut |now| {
                let Some(now) = now else {
                    carried = Carried::Taken(local.values().map(Vec::len).sum());
                    return Ok(Some(bytes.to_vec()));
                };
                let shared = self.lists.parse(Some(now))?;
                let ids: std::collections::BTreeSet<&str> =
                    shared.values().flatten().map(|k| k.id.as_str()).collect();
                let left = local
                    .values()
                    .flatten()
                    .filter(|k| !ids.contains(k.id.as_str()));
                carried = Carried::Left(left.count());
                Ok(None)
            })?;
            Ok(carried)
        })
    }

    /// Every reviewer's passkeys, as saved last.
    pub fn all(&self) -> io::Result<All> {
        self.lists.all()
    }

    /// Applies `edit` to the saved passkeys under the document's lock; saves them when it
    /// answers `true`.
    fn change(&self, edit: &mut (dyn FnMut(&mut All) -> bool + Send)) -> io::Result<()> {
        self.lists.change(|all| (edit(all), ()))
    }

    /// `reviewer`'s passkeys, oldest first.
    pub fn of(&self, reviewer: &str) -> io::Result<Vec<Stored>> {
        Ok(self.all()?.remove(reviewer).unwrap_or_default())
    }

    /// Keeps a new passkey of `reviewer`, unless anyone registered that credential already;
    /// past the limit their oldest is dropped. `first_only`: the registration was shown the
    /// password alone, which stands only for a first passkey, so it is refused when the
    /// reviewer has one by now (registered on any node since that ceremony started).
    pub fn add(&self, reviewer: &str, key: Stored, first_only: bool) -> io::Result<Added> {
        let mut added = Added::Kept;
        let mut key = Some(key);
        self.change(&mut |all| {
            let Some(key) = key.take() else {
                return false;
            };
            if first_only && all.get(reviewer).is_some_and(|keys| !keys.is_empty()) {
                added = Added::NeedsPasskey;
                return false;
            }
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
            let presented = result.counter();
            if behind(presented, kept) {
                used = Used::Behind { kept, presented };
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
    use crate::documents::InDataDir;

    #[test]
    fn an_answer_not_past_the_count_kept_is_behind_and_zero_counts_only_while_kept_at_zero() {
        assert!(!behind(0, 0), "an authenticator that keeps no counter");
        assert!(!behind(1, 0));
        assert!(!behind(8, 7));
        assert!(behind(7, 7), "the same count again");
        assert!(behind(3, 7), "an older count");
        assert!(behind(0, 7), "a copy answering 0 once the key has counted");
    }

    /// A document keeper standing for a cluster's rows: files under another folder.
    fn elsewhere(dir: &std::path::Path) -> Credentials {
        Credentials::new(Arc::new(InDataDir::new(&dir.join("cluster"))))
    }

    #[test]
    fn a_nodes_own_passkeys_are_carried_once_into_a_cluster_that_has_none_and_never_merged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(DOCUMENT);
        let aside = dir.path().join(format!("{DOCUMENT}.before-cluster"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        // The same place (one daemon): nothing to carry, nothing set aside.
        let alone = Credentials::new(Arc::new(InDataDir::new(dir.path())));
        std::fs::write(&file, b"{}").unwrap();
        assert_eq!(alone.carry_over(dir.path()).unwrap(), None);
        assert!(file.exists());
        let cluster = elsewhere(dir.path());
        std::fs::remove_file(&file).unwrap();
        assert_eq!(cluster.carry_over(dir.path()).unwrap(), None, "no file");
        // No document yet: the file's passkeys are taken (an empty list here: a Passkey
        // cannot be made without a ceremony, so the count is of none), and the file set
        // aside: the row deleted later does not get it back.
        std::fs::write(&file, b"{\"rita\": []}").unwrap();
        assert_eq!(
            cluster.carry_over(dir.path()).unwrap(),
            Some(Carried::Taken(0))
        );
        let place = dir.path().join("cluster").join(DOCUMENT);
        assert_eq!(std::fs::read(&place).unwrap(), b"{\"rita\": []}");
        assert!(!file.exists() && aside.exists());
        std::fs::remove_file(&place).unwrap();
        assert_eq!(
            cluster.carry_over(dir.path()).unwrap(),
            None,
            "offered once"
        );
        assert!(!place.exists());
        // A document exists: never written over, whatever the file holds.
        std::fs::write(&place, b"{\"rita\": []}").unwrap();
        std::fs::write(&file, b"{\"sam\": []}").unwrap();
        assert_eq!(
            cluster.carry_over(dir.path()).unwrap(),
            Some(Carried::Left(0))
        );
        assert_eq!(std::fs::read(&place).unwrap(), b"{\"rita\": []}");
        // A damaged file is named and left where it is, and the document alone.
        std::fs::write(&file, b"[").unwrap();
        let err = cluster.carry_over(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
        assert!(file.exists());
        // A damaged document is refused, not taken for none and written over.
        std::fs::write(&file, b"{}").unwrap();
        std::fs::write(&place, b"").unwrap();
        assert_eq!(
            cluster.carry_over(dir.path()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        assert_eq!(std::fs::read(&place).unwrap(), b"");
    }

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
