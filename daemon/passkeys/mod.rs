//! Passkeys (WebAuthn) for reviewers: registering them (`register_start`,
//! `register_finish`) and the step-up an approval on a `step_up = "passkey"` route needs
//! (`confirm_start`, `confirm`). The relying party is the daemon's `public_url`: its host is
//! the RP id, its origin the only origin accepted. webauthn-rs does the checking (challenge,
//! origin, RP id hash, user verification, signature, counter); this module keeps the
//! ceremonies (`ceremonies`) and the registered keys (`store`), both documents
//! (`crate::documents`: data_dir's files on one daemon, rows every node of a cluster
//! reads), so every ceremony and every passkey works through any node. It is a leaf: the app
//! decides who may do what, and records what was confirmed.

pub mod ceremonies;
pub mod journal;
pub mod store;

pub use ceremonies::Binding;
pub use store::Stored;

use crate::documents::Documents;
use ceremonies::{Ceremonies, State};
use sha2::{Digest, Sha256};
use std::io;
use std::path::Path;
use std::sync::Arc;
use webauthn_rs::prelude::{
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// Longest label a reviewer may give a passkey.
pub const MAX_LABEL: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys are off on this daemon: {0}")]
    Off(String),
    #[error(
        "{0} has no passkey registered: register one on /reviewers/passkeys, then approve again"
    )]
    NoneRegistered(String),
    #[error("this passkey confirmation is unknown, already used or expired; confirm with your passkey again")]
    Unknown,
    #[error(
        "this passkey confirmation was made for {0}; confirm again on this handoff as it is now"
    )]
    Mismatch(String),
    #[error("the passkey's answer did not verify ({0}); try again, or register the passkey again on /reviewers/passkeys")]
    Invalid(String),
    #[error("{0}")]
    StepUp(String),
    #[error("this passkey is registered already")]
    Duplicate,
    #[error("label: at most {MAX_LABEL} characters, no control characters")]
    Label,
    /// The passkeys or ceremonies could not be read or kept: a database or disk down (try
    /// again), or a damaged document (`InvalidData`, which names itself and its mending).
    #[error("{}", io_message(.0))]
    Io(#[from] io::Error),
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::InvalidData => format!("passkeys cannot be used: {e}"),
        _ => format!("cannot keep passkeys now ({e}); try again in a moment"),
    }
}

/// What a verified confirmation proves: which of the reviewer's passkeys answered.
#[derive(Debug, Clone)]
pub struct Confirmed {
    pub credential: String,
    pub label: String,
}

pub struct Passkeys {
    /// The relying party, or why passkeys cannot be used (a `public_url` that cannot be one).
    rp: Result<Webauthn, String>,
    credentials: store::Credentials,
    ceremonies: Ceremonies,
    /// Where registrations and removals are recorded (data_dir, never a workspace).
    pub journal: journal::Journal,
}

/// The relying party of `public_url`, or why it cannot be one (told at start-up when a route
/// needs passkeys).
pub fn relying_party(public_url: &str) -> Result<Webauthn, String> {
    let url = Url::parse(public_url).map_err(|e| format!("public_url \"{public_url}\": {e}"))?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(_) => {
            return Err(format!(
                "public_url \"{public_url}\" names an IP address; WebAuthn needs a host name (https://baton.example.com, or http://localhost on one machine)"
            ))
        }
        None => return Err(format!("public_url \"{public_url}\" names no host")),
    };
    if url.scheme() != "https" && host != "localhost" {
        return Err(format!(
            "public_url \"{public_url}\" is not https; browsers offer passkeys only to https:// pages (or http://localhost)"
        ));
    }
    WebauthnBuilder::new(&host, &url)
        .and_then(|b| b.rp_name("baton").build())
        .map_err(|e| format!("public_url \"{public_url}\": {e}"))
}

/// A reviewer's WebAuthn user handle: stable, derived from the name, so nothing more needs
/// keeping and no other reviewer's can collide.
fn user_handle(reviewer: &str) -> Uuid {
    let digest = Sha256::digest(format!("baton passkey user\0{reviewer}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

impl Passkeys {
    /// The passkeys and ceremonies kept as `documents` (one daemon: data_dir's files; a
    /// cluster: its rows), with the relying party of `public_url`; the record of changes in
    /// `data_dir`. Never fails: what is wrong is told by `ready` (at start-up when a route
    /// needs passkeys, and on the passkeys page) and by every call.
    pub fn open(data_dir: &Path, documents: Arc<dyn Documents>, public_url: &str) -> Passkeys {
        let credentials = store::Credentials::new(documents.clone());
        let own = data_dir.join(store::DOCUMENT);
        match credentials.carry_over(data_dir) {
            Ok(None) => {}
            Ok(Some(store::Carried::Taken(n))) => tracing::warn!(
                file = %own.display(), passkeys = n,
                "this node's passkeys are the cluster's now (it had none)"
            ),
            Ok(Some(store::Carried::Left(0))) => {}
            Ok(Some(store::Carried::Left(n))) => tracing::warn!(
                file = %own.display(), passkeys = n,
                "passkeys this node kept before it joined the cluster are not the cluster's and are not used: their reviewers register them again on /reviewers/passkeys"
            ),
            Err(e) => tracing::error!(
                file = %own.display(), error = %e,
                "this node's passkeys cannot be carried into the cluster's; until they are (mend the file or the cluster's row, then restart), reviewers who had one here must register again"
            ),
        }
        Passkeys {
            rp: relying_party(public_url),
            credentials,
            ceremonies: Ceremonies::new(documents),
            journal: journal::Journal::new(data_dir),
        }
    }

    /// Whether passkeys can be registered and asserted, or why not: a relying party, and the
    /// registered passkeys readable (a damaged document is named).
    pub fn ready(&self) -> Result<(), String> {
        self.rp.as_ref().map_err(Clone::clone)?;
        self.credentials
            .all()
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Whether the configuration lets passkeys be used at all (a relying party: `public_url`
    /// names a host), or why not. Unlike a damaged document, nothing at run time mends it.
    pub fn relying_party(&self) -> Result<(), String> {
        self.rp.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Why the registered passkeys cannot be read, if so (for `/healthz`): what it names is
    /// refused until it is mended, and nothing else.
    /// Only a document that is not a list of passkeys (`InvalidData`) is damage; a read that
    /// fails (the database or the disk answering with an error) is not (`problem`).
    pub fn damage(&self) -> Option<String> {
        self.problem()
            .filter(|(damaged, _)| *damaged)
            .map(|(_, why)| why)
    }

    /// Why the registered passkeys cannot be read now, if so, and whether it is damage (the
    /// document is not a list of passkeys: mend it) rather than a read that failed (the
    /// database or the disk answered with an error: try again).
    pub fn problem(&self) -> Option<(bool, String)> {
        let e = self.credentials.all().err()?;
        Some((e.kind() == std::io::ErrorKind::InvalidData, e.to_string()))
    }

    fn rp(&self) -> Result<&Webauthn, PasskeyError> {
        self.rp.as_ref().map_err(|e| PasskeyError::Off(e.clone()))
    }

    /// `reviewer`'s passkeys, oldest first; an error when passkeys are off or their document
    /// cannot be read, never "none" (a first passkey needs less than another does).
    pub fn of(&self, reviewer: &str) -> Result<Vec<Stored>, PasskeyError> {
        self.rp()?;
        Ok(self.credentials.of(reviewer)?)
    }

    /// Starts registering a passkey for `reviewer`: the options for
    /// `navigator.credentials.create` and the ceremony's id.
    pub fn register_start(
        &self,
        reviewer: &str,
        proof: &str,
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        let rp = self.rp()?;
        let exclude: Vec<_> = self
            .credentials
            .of(reviewer)?
            .iter()
            .map(|k| k.passkey.cred_id().clone())
            .collect();
        let (options, state) = rp
            .start_passkey_registration(user_handle(reviewer), reviewer, reviewer, Some(exclude))
            .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        let id = self
            .ceremonies
            .start(reviewer, State::Registration(state, proof.to_string()))?;
        Ok((options_json(&options), id))
    }

    /// Checks the browser's answer to registration `ceremony` and keeps the new passkey;
    /// returns it with what was shown to start the ceremony.
    pub fn register_finish(
        &self,
        reviewer: &str,
        ceremony: &str,
        credential: &str,
        label: &str,
    ) -> Result<(Stored, String), PasskeyError> {
        let label = label.trim();
        if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
            return Err(PasskeyError::Label);
        }
        let rp = self.rp()?;
        // Only the reviewer's own ceremonies are looked in: another's id is unknown here.
        let taken = self.ceremonies.take(reviewer, ceremony)?;
        let Some(ceremonies::Ceremony {
            state: State::Registration(state, proof),
            ..
        }) = taken
        else {
            return Err(PasskeyError::Unknown);
        };
        let answer: RegisterPublicKeyCredential = serde_json::from_str(credential)
            .map_err(|e| PasskeyError::Invalid(format!("not a registration answer: {e}")))?;
        let passkey = rp
            .finish_passkey_registration(&answer, &state)
            .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        let id = store::id_of(&passkey);
        let label = match label {
            "" => format!("passkey {}", self.credentials.of(reviewer)?.len() + 1),
            l => l.to_string(),
        };
        let stored = Stored {
            id,
            label,
            created_at: crate::clock::now_rfc3339(),
            last_used_at: None,
            passkey,
        };
        // The proof was checked when the ceremony started: the password stood for a first
        // passkey then, and must still (a thief holding the session and password could
        // otherwise open a ceremony, wait for the reviewer's first registration, and add a
        // key of theirs beside it).
        let first_only = proof == "password";
        match self.credentials.add(reviewer, stored.clone(), first_only)? {
            store::Added::Kept => Ok((stored, proof)),
            store::Added::Duplicate => Err(PasskeyError::Duplicate),
            store::Added::NeedsPasskey => Err(PasskeyError::StepUp(
                "you have a passkey by now: registering another needs a confirmation with it; start again on /reviewers/passkeys".into(),
            )),
        }
    }

    /// Forgets `reviewer`'s passkey `id`; whether it was registered.
    pub fn remove(&self, reviewer: &str, id: &str) -> Result<bool, PasskeyError> {
        self.rp()?;
        Ok(self.credentials.remove(reviewer, id)?)
    }

    /// Starts an assertion by `reviewer` (options for `navigator.credentials.get` allowing
    /// only their passkeys) kept as `state` makes it: its options and id.
    fn assertion_start(
        &self,
        reviewer: &str,
        state: impl FnOnce(webauthn_rs::prelude::PasskeyAuthentication) -> State,
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        let rp = self.rp()?;
        let keys: Vec<_> = self
            .credentials
            .of(reviewer)?
            .into_iter()
            .map(|k| k.passkey)
            .collect();
        if keys.is_empty() {
            return Err(PasskeyError::NoneRegistered(reviewer.to_string()));
        }
        let (options, started) = rp
            .start_passkey_authentication(&keys)
            .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
        let id = self.ceremonies.start(reviewer, state(started))?;
        Ok((options_json(&options), id))
    }

    /// Starts a confirmation of `binding` by `reviewer`: the options for
    /// `navigator.credentials.get` (allowing only the reviewer's passkeys) and its id.
    pub fn confirm_start(
        &self,
        reviewer: &str,
        binding: Binding,
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        self.assertion_start(reviewer, |s| State::Assertion(s, binding))
    }

    /// Checks `reviewer`'s answer to confirmation `ceremony` for `binding`. The ceremony is
    /// spent whatever the outcome, so an answer (or a copy of it) is never good twice, on any
    /// node.
    pub fn confirm(
        &self,
        reviewer: &str,
        ceremony: &str,
        credential: &str,
        binding: &Binding,
    ) -> Result<Confirmed, PasskeyError> {
        let rp = self.rp()?;
        let Some(taken) = self.ceremonies.take(reviewer, ceremony)? else {
            return Err(PasskeyError::Unknown);
        };
        let State::Assertion(state, bound) = taken.state else {
            return Err(PasskeyError::Unknown);
        };
        if &bound != binding {
            return Err(PasskeyError::Mismatch(bound.to_string()));
        }
        verify_assertion(rp, &self.credentials, reviewer, &state, credential)
    }

    /// Starts a confirmation that `reviewer` may change their passkeys for `purpose`
    /// (`register`, or `remove <id>`): options for `navigator.credentials.get` allowing only
    /// the reviewer's passkeys, and its id.
    pub fn manage_start(
        &self,
        reviewer: &str,
        purpose: &str,
    ) -> Result<(serde_json::Value, String), PasskeyError> {
        self.assertion_start(reviewer, |s| State::Manage(s, purpose.to_string()))
    }

    /// Checks `reviewer`'s answer to management confirmation `ceremony` for `purpose`; spent
    /// whatever the outcome.
    pub fn manage_confirm(
        &self,
        reviewer: &str,
        ceremony: &str,
        credential: &str,
        purpose: &str,
    ) -> Result<Confirmed, PasskeyError> {
        let rp = self.rp()?;
        let Some(taken) = self.ceremonies.take(reviewer, ceremony)? else {
            return Err(PasskeyError::Unknown);
        };
        let State::Manage(state, bound) = taken.state else {
            return Err(PasskeyError::Unknown);
        };
        if bound != purpose {
            return Err(PasskeyError::Mismatch(format!("\"{bound}\"")));
        }
        verify_assertion(rp, &self.credentials, reviewer, &state, credential)
    }
}

/// Checks an assertion against the ceremony's state and takes its counter into the passkey
/// as kept now (refused when another assertion, on any node, counted as far already).
fn verify_assertion(
    rp: &Webauthn,
    credentials: &store::Credentials,
    reviewer: &str,
    state: &webauthn_rs::prelude::PasskeyAuthentication,
    credential: &str,
) -> Result<Confirmed, PasskeyError> {
    let answer: PublicKeyCredential = serde_json::from_str(credential)
        .map_err(|e| PasskeyError::Invalid(format!("not an assertion: {e}")))?;
    let result = rp
        .finish_passkey_authentication(&answer, state)
        .map_err(|e| PasskeyError::Invalid(e.to_string()))?;
    if !result.user_verified() {
        return Err(PasskeyError::Invalid(
            "the authenticator did not verify its user".into(),
        ));
    }
    let at = crate::clock::now_rfc3339();
    let label = match credentials.used(reviewer, &result, &at)? {
        store::Used::Taken(label) => label,
        store::Used::Gone => {
            return Err(PasskeyError::Invalid(
                "that passkey is no longer registered".into(),
            ))
        }
        store::Used::Behind { kept, presented } => {
            return Err(PasskeyError::Invalid(format!(
                "the passkey's signature counter ({presented}) is not past the last one counted ({kept}): a copy of the key, or an answer made before the last one"
            )))
        }
    };
    Ok(Confirmed {
        credential: store::id_of_result(&result),
        label,
    })
}

/// The options as the browser's JSON form (`PublicKeyCredentialCreationOptionsJSON` /
/// `...RequestOptionsJSON`: binary fields base64url).
fn options_json(options: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(options).expect("WebAuthn options serialize")
}

#[cfg(test)]
mod tests {
    use super::Passkeys;
    use crate::documents::{Change, Documents, InDataDir};
    use std::sync::Arc;

    /// A keeper that cannot be reached now (a database hiccup).
    #[derive(Debug)]
    struct Unreachable;
    impl Documents for Unreachable {
        fn read(&self, _: &str) -> std::io::Result<Option<Vec<u8>>> {
            Err(std::io::Error::other("connection reset"))
        }
        fn change(&self, _: &str, _: Change<'_>) -> std::io::Result<()> {
            Err(std::io::Error::other("connection reset"))
        }
        fn place(&self, name: &str) -> String {
            format!("the cluster's row {name}")
        }
    }

    #[test]
    fn only_a_document_that_is_not_passkeys_is_damage_a_failed_read_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = "http://localhost:8080";
        let flapping = Passkeys::open(dir.path(), Arc::new(Unreachable), url);
        assert_eq!(flapping.damage(), None, "not damage");
        let (damaged, why) = flapping.problem().expect("named");
        assert!(!damaged && why.contains("connection reset"), "{why}");
        let sound = Passkeys::open(dir.path(), Arc::new(InDataDir::new(dir.path())), url);
        assert_eq!(sound.problem(), None);
        let file = dir.path().join("passkeys/credentials.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{ not json").unwrap();
        let why = sound.damage().expect("damage");
        assert!(why.contains("password alone"), "{why}");
        assert!(sound.problem().unwrap().0);
    }
}
