//! Reviewers' registered passkeys, in `data_dir/passkeys/credentials.json`: read once, kept
//! in memory, rewritten whole (atomically, synced) on each change, so a crash leaves the old
//! list or the new one. Only public keys and counters are kept: nothing here signs anything.
//! Never in a workspace, where agents could write.

use crate::workspace::fsync::Kind;
use crate::workspace::write_atomic;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use webauthn_rs::prelude::{AuthenticationResult, Passkey};

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

pub struct Credentials {
    path: PathBuf,
    /// By reviewer, oldest first.
    all: Mutex<BTreeMap<String, Vec<Stored>>>,
}

impl Credentials {
    /// The passkeys kept in `data_dir` (none yet: empty).
    pub fn open(data_dir: &Path) -> io::Result<Credentials> {
        let path = data_dir.join("passkeys").join("credentials.json");
        let all = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a list of passkeys ({e}); move it aside to start with none (reviewers then register theirs again on /reviewers/passkeys)",
                        path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Credentials {
            path,
            all: Mutex::new(all),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Stored>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `next` and only then takes it as the state: a failed write changes nothing.
    fn replace(
        &self,
        all: &mut BTreeMap<String, Vec<Stored>>,
        mut next: BTreeMap<String, Vec<Stored>>,
    ) -> io::Result<()> {
        next.retain(|_, keys| !keys.is_empty());
        let bytes = serde_json::to_vec_pretty(&next).expect("passkeys serialize");
        write_atomic(&self.path, &bytes, Kind::Other)?;
        *all = next;
        Ok(())
    }

    /// `reviewer`'s passkeys, oldest first.
    pub fn of(&self, reviewer: &str) -> Vec<Stored> {
        self.lock().get(reviewer).cloned().unwrap_or_default()
    }

    /// Who registered credential `id`, if anyone did.
    pub fn owner(&self, id: &str) -> Option<String> {
        self.lock()
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| k.id == id))
            .map(|(who, _)| who.clone())
    }

    /// Keeps a new passkey of `reviewer`; past the limit the oldest is dropped.
    pub fn add(&self, reviewer: &str, key: Stored) -> io::Result<()> {
        let mut all = self.lock();
        let mut next = all.clone();
        let mine = next.entry(reviewer.to_string()).or_default();
        mine.push(key);
        if mine.len() > MAX_PER_REVIEWER {
            mine.remove(0);
        }
        self.replace(&mut all, next)
    }

    /// Forgets passkey `id` of `reviewer`; whether it was kept.
    pub fn remove(&self, reviewer: &str, id: &str) -> io::Result<bool> {
        let mut all = self.lock();
        let mut next = all.clone();
        let Some(mine) = next.get_mut(reviewer) else {
            return Ok(false);
        };
        let before = mine.len();
        mine.retain(|k| k.id != id);
        if mine.len() == before {
            return Ok(false);
        }
        self.replace(&mut all, next)?;
        Ok(true)
    }

    /// Takes a verified assertion's counter and time of use into `reviewer`'s passkey.
    /// Returns the passkey's label, or `None` when it is no longer registered (removed while
    /// the ceremony ran: the assertion then proves nothing).
    pub fn used(
        &self,
        reviewer: &str,
        result: &AuthenticationResult,
        at: &str,
    ) -> io::Result<Option<String>> {
        let id = id_of_result(result);
        let mut all = self.lock();
        let mut next = all.clone();
        let Some(key) = next
            .get_mut(reviewer)
            .and_then(|keys| keys.iter_mut().find(|k| k.id == id))
        else {
            return Ok(None);
        };
        key.passkey.update_credential(result);
        key.last_used_at = Some(at.to_string());
        let label = key.label.clone();
        self.replace(&mut all, next)?;
        Ok(Some(label))
    }
}
