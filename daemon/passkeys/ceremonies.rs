//! Ceremonies under way: the server's half of each WebAuthn exchange (the challenge and what
//! it must come back signed over), kept in memory between the two requests of a ceremony and
//! never sent to the browser (webauthn-rs warns that state held by the client can be
//! replayed). Each is taken out when its answer comes, used or not, so one answer is good
//! once; each expires soon; each names the reviewer it was made for and, for an approval,
//! the handoff revision and outcome it confirms.

use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use webauthn_rs::prelude::{PasskeyAuthentication, PasskeyRegistration};

/// How long a browser has to answer a registration (the person names and creates a key).
pub const REGISTRATION_TTL: Duration = Duration::from_secs(300);
/// How long an approval's confirmation stays good: one touch of the authenticator.
pub const ASSERTION_TTL: Duration = Duration::from_secs(120);
/// Ceremonies kept at once, everyone's: past it the oldest are dropped, so a flood of
/// started ceremonies cannot grow memory without bound.
const MAX_CEREMONIES: usize = 4096;

/// What a confirmation is for: one decision on one revision of one handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
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

pub enum State {
    /// With what the reviewer showed to start it (`password`, `passkey <id>`), for the record.
    Registration(PasskeyRegistration, String),
    Assertion(PasskeyAuthentication, Binding),
    /// A confirmation that the reviewer may change their own passkeys, for one purpose
    /// (`register`, or `remove <id>`).
    Manage(PasskeyAuthentication, String),
}

pub struct Ceremony {
    pub reviewer: String,
    pub state: State,
    expires: Instant,
}

#[derive(Default)]
pub struct Ceremonies {
    open: Mutex<HashMap<String, Ceremony>>,
}

impl Ceremonies {
    /// Keeps a ceremony of `reviewer`; returns its id (128 random bits, hex), which the
    /// browser sends back with its answer.
    pub fn start(&self, reviewer: &str, state: State, now: Instant) -> String {
        let ttl = match state {
            State::Registration(..) => REGISTRATION_TTL,
            State::Assertion(..) | State::Manage(..) => ASSERTION_TTL,
        };
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|_, c| c.expires > now);
        if open.len() >= MAX_CEREMONIES {
            let oldest = open
                .iter()
                .min_by_key(|(_, c)| c.expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                open.remove(&oldest);
            }
        }
        let ceremony = Ceremony {
            reviewer: reviewer.to_string(),
            state,
            expires: now + ttl,
        };
        open.insert(id.clone(), ceremony);
        id
    }

    /// Takes ceremony `id` out, whoever asks: an answer is tried once. `None` when it is
    /// unknown, already answered or expired.
    pub fn take(&self, id: &str, now: Instant) -> Option<Ceremony> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(id).filter(|c| c.expires > now)
    }
}
