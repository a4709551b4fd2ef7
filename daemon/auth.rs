//! Who is calling: bearer tokens (stored as sha256 hashes) mapped to reviewers and agents, and
//! the admin token generated on first run.

use crate::config::Config;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person (or an agent holding a reviewer's token): may decide.
    Reviewer { name: String, roles: Vec<String> },
    /// An agent: may read and write its workspaces' agent files, never decide.
    Agent {
        name: String,
        workspaces: Vec<String>,
    },
}

impl Actor {
    /// Whether this caller may see workspace `ws`.
    pub fn can_see(&self, ws: &str) -> bool {
        match self {
            Actor::Reviewer { .. } => true,
            Actor::Agent { workspaces, .. } => {
                workspaces.iter().any(|g| crate::routing::glob_match(g, ws))
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Tokens {
    by_hash: HashMap<String, Actor>,
}

const ADMIN_TOKEN_FILE: &str = "admin-token.sha256";

impl Tokens {
    /// Builds the token table. With no admin token in `data_dir` yet, makes one and returns it
    /// in clear, once, for the caller to print; only its hash is stored.
    /// `shared`: a cluster's secrets, so the admin token is the same on every node (the node
    /// that made it printed it; the others print none).
    pub fn load(
        config: &Config,
        shared: Option<&dyn SharedSecrets>,
    ) -> std::io::Result<(Tokens, Option<String>)> {
        let mut by_hash = HashMap::new();
        for u in &config.users {
            if let Some(h) = &u.token_sha256 {
                let actor = Actor::Reviewer {
                    name: u.name.clone(),
                    roles: u.roles.clone(),
                };
                by_hash.insert(h.to_ascii_lowercase(), actor);
            }
        }
        for a in &config.agents {
            let actor = Actor::Agent {
                name: a.name.clone(),
                workspaces: a.workspaces.clone(),
            };
            by_hash.insert(a.token_sha256.to_ascii_lowercase(), actor);
        }
        let (admin_hash, fresh) = admin_token(&config.data_dir)?;
        let (admin_hash, fresh) = adopted(shared, "admin_token_sha256", admin_hash, fresh)?;
        let admin = Actor::Reviewer {
            name: crate::config::ADMIN_NAME.into(),
            roles: vec!["admin".into(), "reviewer".into()],
        };
        by_hash.insert(admin_hash, admin);
        Ok((Tokens { by_hash }, fresh))
    }

    pub fn authenticate(&self, token: &str) -> Option<&Actor> {
        self.by_hash.get(&token_hash(token))
    }
}

/// Secrets the nodes of a cluster share (see `crate::cluster`): the first node's stands.
pub trait SharedSecrets {
    /// The cluster's secret `name`: `ours` if it had none yet, else the one it has.
    fn adopt(&self, name: &str, ours: &str) -> std::io::Result<String>;
}

/// `ours` (just made when `fresh` holds it in clear), or the cluster's secret of that name;
/// a fresh one that lost to the cluster's is not printed, as it lets nobody in.
pub fn adopted(
    shared: Option<&dyn SharedSecrets>,
    name: &str,
    ours: String,
    fresh: Option<String>,
) -> std::io::Result<(String, Option<String>)> {
    let Some(shared) = shared else {
        return Ok((ours, fresh));
    };
    let theirs = shared.adopt(name, &ours)?;
    Ok(match theirs == ours {
        true => (ours, fresh),
        false => (theirs, None),
    })
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn admin_token(data_dir: &Path) -> std::io::Result<(String, Option<String>)> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(h) if h.trim().len() == 64 => return Ok((h.trim().to_ascii_lowercase(), None)),
        Ok(_) => {
            tracing::warn!(file = %path.display(), "admin token hash is malformed; making a new token")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = format!("baton_{}", hex::encode(rand::random::<[u8; 24]>()));
    let hash = token_hash(&token);
    std::fs::create_dir_all(data_dir)?;
    crate::workspace::write_atomic(
        &path,
        format!("{hash}\n").as_bytes(),
        crate::workspace::fsync::Kind::Other,
    )?;
    Ok((hash, Some(token)))
}
