//! Ceremonies under way: the server's half of each WebAuthn exchange (the challenge and what
//! it must come back signed over), kept between the two requests of a ceremony and never sent
//! to the browser (webauthn-rs warns that state held by the client can be replayed). They are
//! documents (`crate::documents`), one per reviewer: one daemon's are data_dir files, a
//! cluster's are rows every node reads, so a ceremony started on one node is finished on
//! whichever node the browser's answer reaches (no sticky sessions).
//!
//! Each is taken out, under its document's change lock, when its answer comes, used or not,
//! so one answer is good once: of two nodes finishing the same ceremony, the second finds it
//! gone. Each expires soon (by the daemon's wall clock, which a cluster's nodes share within
//! seconds); each names the reviewer it was made for (it is kept in their document only, so
//! another reviewer presenting its id finds nothing) and, for an approval, the handoff revision
//! and outcome it confirms. The document keeps each id's sha256 only: whoever reads it cannot
//! present a ceremony of someone else's.

use crate::documents::Documents;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

/// How long a browser has to answer a registration (the person names and creates a key).
pub const REGISTRATION_TTL: Duration = Duration::from_secs(300);
/// How long an approval's confirmation stays good: one touch of the authenticator.
pub const ASSERTION_TTL: Duration = Duration::from_secs(120);
/// Ceremonies one reviewer keeps open at once: past it their oldest is dropped, so a flood of
/// started ceremonies grows no document without bound (and touches nobody else's).
const MAX_OPEN: usize = 16;

/// What a confirmation is for: one decision on one revision of one handoff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub key: String,
    pub revision: u32,
    /// The outcome confirmed (`approved`).
    pub outcome: String,
}

impl std::fmt::Display for Binding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of handoff \"{}\" revision {}",
            self.outcome, self.key, self.revision
        )
    }
}

#[derive(Serialize, Deserialize)]
pub enum State {
    /// With what the reviewer showed to start it (`password`, `passkey <id>`), for the record.
    Registration(PasskeyRegistration, String),
    Assertion(PasskeyAuthentication, Binding),
    /// A confirmation that the reviewer may change their own passkeys, for one purpose
    /// (`register`, or `remove <id>`).
    Manage(PasskeyAuthentication, String),
}

/// A ceremony as its document keeps it.
#[derive(Serialize, Deserialize)]
struct Kept {
    /// Unix milliseconds.
    expires_ms: u64,
    state: State,
}

/// One reviewer's open ceremonies, by the sha256 of their ids.
#[derive(Serialize, Deserialize, Default)]
struct Open {
    open: BTreeMap<String, Kept>,
}

pub struct Ceremony {
    pub reviewer: String,
    pub state: State,
}

pub struct Ceremonies {
    documents: Arc<dyn Documents>,
}

/// The document of `reviewer`'s ceremonies: named by a digest of the name, so any name makes
/// one plain file name (one daemon) and row name.
fn document(reviewer: &str) -> String {
    let digest = Sha256::digest(format!("baton passkey ceremonies\0{reviewer}").as_bytes());
    format!("passkeys/ceremonies/{}.json", hex::encode(&digest[..16]))
}

fn id_digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Ceremonies {
    pub fn new(documents: Arc<dyn Documents>) -> Ceremonies {
        Ceremonies { documents }
    }

    /// Reads a ceremonies document; empty or not one is damage, never "none open": the
    /// ceremonies it held cannot be told from forged ones, so none is finished until it is
    /// mended (deleted: reviewers then start their ceremonies again).
    fn parse(&self, name: &str, bytes: Option<&[u8]>) -> io::Result<Open> {
        let Some(bytes) = bytes else {
            return Ok(Open::default());
        };
        serde_json::from_slice(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a list of passkey ceremonies ({e}); delete it, and the reviewer starts the passkey confirmation again",
                    self.documents.place(name)
                ),
            )
        })
    }

    /// Keeps a ceremony of `reviewer`; returns its id (128 random bits, hex), which the
    /// browser sends back with its answer.
    pub fn start(&self, reviewer: &str, state: State) -> io::Result<String> {
        self.start_at(reviewer, state, crate::clock::now_ms())
    }

    fn start_at(&self, reviewer: &str, state: State, now_ms: u64) -> io::Result<String> {
        let ttl = match state {
            State::Registration(..) => REGISTRATION_TTL,
            State::Assertion(..) | State::Manage(..) => ASSERTION_TTL,
        };
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let name = document(reviewer);
        let mut kept = Some(Kept {
            expires_ms: now_ms + ttl.as_millis() as u64,
            state,
        });
        self.documents.change(&name, &mut |now| {
            let mut open = self.parse(&name, now)?;
            open.open.retain(|_, c| c.expires_ms > now_ms);
            while open.open.len() >= MAX_OPEN {
                let oldest = open
                    .open
                    .iter()
                    .min_by_key(|(_, c)| c.expires_ms)
                    .map(|(id, _)| id.clone());
                match oldest {
                    Some(oldest) => open.open.remove(&oldest),
                    None => break,
                };
            }
            let ceremony = kept
                .take()
                .ok_or_else(|| io::Error::other("a ceremony is kept once"))?;
            open.open.insert(id_digest(&id), ceremony);
            Ok(Some(serde_json::to_vec(&open).map_err(io::Error::other)?))
        })?;
        Ok(id)
    }

    /// Takes `reviewer`'s ceremony `id` out: an answer is tried once. `None` when it is not
    /// theirs, unknown, already answered (here or on another node) or expired.
    pub fn take(&self, reviewer: &str, id: &str) -> io::Result<Option<Ceremony>> {
        self.take_at(reviewer, id, crate::clock::now_ms())
    }

    fn take_at(&self, reviewer: &str, id: &str, now_ms: u64) -> io::Result<Option<Ceremony>> {
        let name = document(reviewer);
        // Nothing to take: no lock, no write (an id made up, or a reviewer with none open).
        let Some(bytes) = self.documents.read(&name)? else {
            return Ok(None);
        };
        let digest = id_digest(id);
        if !self.parse(&name, Some(&bytes))?.open.contains_key(&digest) {
            return Ok(None);
        }
        let mut taken = None;
        self.documents.change(&name, &mut |now| {
            let mut open = self.parse(&name, now)?;
            taken = open.open.remove(&digest);
            if taken.is_none() {
                // Taken meanwhile (another node, another request): nothing to save.
                return Ok(None);
            }
            open.open.retain(|_, c| c.expires_ms > now_ms);
            Ok(Some(serde_json::to_vec(&open).map_err(io::Error::other)?))
        })?;
        Ok(taken.filter(|c| c.expires_ms > now_ms).map(|c| Ceremony {
            reviewer: reviewer.to_string(),
            state: c.state,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::InDataDir;
    use webauthn_rs::prelude::{Url, Uuid, WebauthnBuilder};

    fn registration() -> State {
        let url = Url::parse("https://baton.example").unwrap();
        let rp = WebauthnBuilder::new("baton.example", &url)
            .unwrap()
            .build()
            .unwrap();
        let (_, state) = rp
            .start_passkey_registration(Uuid::nil(), "rita", "rita", None)
            .unwrap();
        State::Registration(state, "password".into())
    }

    #[test]
    fn a_ceremony_is_finished_once_by_its_reviewer_on_any_reader_before_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let here = Ceremonies::new(Arc::new(InDataDir::new(dir.path())));
        // Another reader of the same documents: another node.
        let there = Ceremonies::new(Arc::new(InDataDir::new(dir.path())));
        let id = here.start_at("rita", registration(), 1_000).unwrap();
        assert!(
            there.take_at("sam", &id, 2_000).unwrap().is_none(),
            "another reviewer's id"
        );
        let taken = there.take_at("rita", &id, 2_000).unwrap().expect("rita's");
        assert!(matches!(taken.state, State::Registration(_, ref p) if p == "password"));
        assert!(
            here.take_at("rita", &id, 2_000).unwrap().is_none(),
            "taken once"
        );
        let late = here.start_at("rita", registration(), 1_000).unwrap();
        let expired = 1_000 + REGISTRATION_TTL.as_millis() as u64;
        assert!(there.take_at("rita", &late, expired).unwrap().is_none());
        // The document holds digests of the ids, never an id.
        let kept = std::fs::read_to_string(dir.path().join(document("rita"))).unwrap();
        assert!(!kept.contains(&id) && !kept.contains(&late), "{kept}");
    }

    #[test]
    fn a_reviewer_keeps_a_bounded_number_open() {
        let dir = tempfile::tempdir().unwrap();
        let c = Ceremonies::new(Arc::new(InDataDir::new(dir.path())));
        let first = c.start_at("rita", registration(), 1_000).unwrap();
        for i in 0..MAX_OPEN as u64 {
            c.start_at("rita", registration(), 1_001 + i).unwrap();
        }
        assert!(c.take_at("rita", &first, 2_000).unwrap().is_none());
        let kept = std::fs::read(dir.path().join(document("rita"))).unwrap();
        let open: Open = serde_json::from_slice(&kept).unwrap();
        assert_eq!(open.open.len(), MAX_OPEN);
    }

    #[test]
    fn a_damaged_document_finishes_and_starts_nothing_and_is_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let c = Ceremonies::new(Arc::new(InDataDir::new(dir.path())));
        let id = c.start_at("rita", registration(), 1_000).unwrap();
        let file = dir.path().join(document("rita"));
        for damage in [&b""[..], b"{\"open\": 7}"] {
            std::fs::write(&file, damage).unwrap();
            let err = c.take_at("rita", &id, 2_000).err().expect("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(
                err.to_string().contains("not a list of passkey ceremonies"),
                "{err}"
            );
            assert!(c.start_at("rita", registration(), 2_000).is_err());
            assert_eq!(std::fs::read(&file).unwrap(), damage);
        }
    }
}
