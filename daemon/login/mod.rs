//! Signing in to the pages: passwords checked against argon2id hashes (`[[users]]`, or the
//! admin login made on first start), server-side sessions, and a throttle on failures.

pub mod links;
mod sessions;
mod throttle;

pub use sessions::{random_token, Session, SharedSessions};

use crate::auth::Actor;
use crate::config::Config;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use sessions::Sessions;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use throttle::Throttle;

/// The admin login's hash, made on first start when no `[[users]]` entry has a password.
const ADMIN_PASSWORD_FILE: &str = "admin-password.argon2";
pub use crate::config::ADMIN_NAME;

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong name or password")]
    Wrong,
    #[error("too many failed sign-ins; try again in {} minutes", .0.as_secs().div_ceil(60))]
    Throttled(Duration),
    #[error("cannot keep the session ({0}); try again in a moment")]
    Unavailable(String),
}

struct Account {
    hash: String,
    actor: Actor,
}

pub struct Logins {
    accounts: HashMap<String, Account>,
    sessions: Sessions,
    throttle: Throttle,
    /// Verified against when the name is unknown, so a wrong name costs as long as a wrong
    /// password and timing does not tell which names exist.
    decoy: String,
}

/// A signed-in person, as a request sees them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub actor: Actor,
    pub name: String,
    pub csrf: String,
}

impl Logins {
    /// Builds the accounts; returns the admin password in clear when it was just made, once,
    /// for the caller to print.
    /// `shared`: a cluster's sessions table, so a sign-in holds on every node.
    /// `secrets`: a cluster's, so the `admin` password is the same on every node.
    pub fn load(
        config: &Config,
        shared: Option<std::sync::Arc<dyn SharedSessions>>,
        secrets: Option<&dyn crate::auth::SharedSecrets>,
    ) -> std::io::Result<(Logins, Option<String>)> {
        let mut accounts = HashMap::new();
        for u in &config.users {
            if let Some(hash) = &u.password_hash {
                let actor = Actor::Reviewer {
                    name: u.name.clone(),
                    roles: u.roles.clone(),
                };
                accounts.insert(
                    u.name.clone(),
                    Account {
                        hash: hash.clone(),
                        actor,
                    },
                );
            }
        }
        let mut fresh = None;
        if accounts.is_empty() {
            let (hash, password) = admin_password(&config.data_dir)?;
            let (hash, password) =
                crate::auth::adopted(secrets, "admin_password_argon2", hash, password)?;
            fresh = password;
            let actor = Actor::Reviewer {
                name: ADMIN_NAME.into(),
                roles: vec!["admin".into(), "reviewer".into()],
            };
            accounts.insert(ADMIN_NAME.into(), Account { hash, actor });
        }
        let s = &config.sessions;
        let sessions = Sessions::load(
            config.data_dir.join("sessions.json"),
            s.idle_timeout_s,
            s.absolute_timeout_s,
            shared,
        );
        sessions.retain_users(|u| accounts.contains_key(u));
        let logins = Logins {
            accounts,
            sessions,
            throttle: Throttle::default(),
            decoy: hash_password("decoy").map_err(std::io::Error::other)?,
        };
        Ok((logins, fresh))
    }

    /// Writes the sessions now (at shutdown: the saver thread may not have written the last
    /// changes yet).
    pub fn flush(&self) {
        self.sessions.flush();
    }

    /// Checks a password (slow by design: argon2id) and starts a session. Returns the new
    /// session's id for the cookie.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<(String, SignedIn), LoginError> {
        if let Some(wait) = self.throttle.wait(name, addr) {
            return Err(LoginError::Throttled(wait));
        }
        let account = self.accounts.get(name);
        let hash = account.map_or(self.decoy.as_str(), |a| a.hash.as_str());
        let ok = verify(password, hash) && account.is_some();
        let Some(account) = account.filter(|_| ok) else {
            self.throttle.failed(name, addr);
            tracing::warn!(user = name, addr = ?addr, "failed sign-in");
            return Err(LoginError::Wrong);
        };
        self.throttle.succeeded(name);
        let (id, session) = self
            .sessions
            .start(name)
            .map_err(|e| LoginError::Unavailable(e.to_string()))?;
        tracing::info!(user = name, "signed in");
        Ok((id, signed_in(account, session)))
    }

    /// Checks `name`'s password again, for a step a stolen session cookie must not take
    /// alone (registering a first passkey). Counts in the sign-in throttle like a sign-in.
    pub fn recheck(
        &self,
        name: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> Result<(), LoginError> {
        if let Some(wait) = self.throttle.wait(name, addr) {
            return Err(LoginError::Throttled(wait));
        }
        let account = self.accounts.get(name);
        let hash = account.map_or(self.decoy.as_str(), |a| a.hash.as_str());
        if verify(password, hash) && account.is_some() {
            self.throttle.succeeded(name);
            return Ok(());
        }
        self.throttle.failed(name, addr);
        tracing::warn!(user = name, addr = ?addr, "password typed again did not match");
        Err(LoginError::Wrong)
    }

    /// Who holds the session with this id, if it is live.
    pub fn session(&self, id: &str) -> Option<SignedIn> {
        let session = self.sessions.get(id)?;
        let account = self.accounts.get(&session.user)?;
        Some(signed_in(account, session))
    }

    pub fn sign_out(&self, id: &str) {
        if self.sessions.end(id) {
            tracing::info!("signed out");
        }
    }

    /// How long a client that sent bad action-link tokens must wait before it may try
    /// another: the sign-in throttle, counting each address as an account of its own.
    pub fn link_wait(&self, addr: Option<IpAddr>) -> Option<Duration> {
        self.throttle.wait(&link_account(addr), addr)
    }

    /// A token that is no link of this daemon's (forged, cut, changed) counts as a failed
    /// sign-in of its address.
    pub fn link_failed(&self, addr: Option<IpAddr>) {
        self.throttle.failed(&link_account(addr), addr);
        tracing::warn!(addr = ?addr, "action link refused: not a token baton made");
    }
}

/// The throttle's account for links: no name is known, so the address stands for one (and
/// `\0`, which no user name holds, keeps it apart from real accounts).
fn link_account(addr: Option<IpAddr>) -> String {
    format!("\0link:{addr:?}")
}

fn signed_in(account: &Account, session: Session) -> SignedIn {
    SignedIn {
        actor: account.actor.clone(),
        name: session.user,
        csrf: session.csrf,
    }
}

fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// An argon2id hash in PHC form, as `baton hash-password` prints it.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

/// The admin login's hash from `data_dir`, or a new random password and its hash.
fn admin_password(data_dir: &Path) -> std::io::Result<(String, Option<String>)> {
    let path = data_dir.join(ADMIN_PASSWORD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(h) if PasswordHash::new(h.trim()).is_ok() => return Ok((h.trim().to_string(), None)),
        Ok(_) => {
            tracing::warn!(file = %path.display(), "admin password hash is malformed; making a new password")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Words a person can type from a terminal: 20 characters of base32-like alphabet.
    let password: String = {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        let bytes = rand::random::<[u8; 20]>();
        bytes
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect()
    };
    let hash = hash_password(&password).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(data_dir)?;
    crate::workspace::write_atomic(
        &path,
        format!("{hash}\n").as_bytes(),
        crate::workspace::fsync::Kind::Other,
    )?;
    Ok((hash, Some(password)))
}
