//! Handoffs being filed through the API by an agent whose token proves it, from the moment
//! the upload is about to write handoff.json until their first receipt. The daemon reads what
//! is on the share, not what was uploaded: with a settle window (a polled share), a background
//! hash of large artifacts, or a writer fast enough, another writer of the share can put a
//! handoff under the same id in the upload's place before it is read. Received, that file
//! would take the key (the record, its waits and pushes) for a sender nobody proved, and the
//! agent whose upload it replaced would be refused as "revising another agent's handoff". So
//! the first receipt of a key being filed takes only the bytes filed (`displaced`); other
//! bytes are answered invalid, and the agent filing is told (`was_displaced`): both hear of
//! the conflict, neither is given the key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a filing is remembered without its receipt: far past any settle window or
/// background hash, short enough that a lost one is soon forgotten.
const KEPT: Duration = Duration::from_secs(300);

/// Most filings remembered at once (each is a few names and a digest).
const MAX: usize = 10_000;

struct Filing {
    agent: String,
    digest: String,
    since: Instant,
    /// The digest of the other bytes found in its place, once they were.
    displaced_by: Option<String>,
}

/// By (workspace, key).
static FILING: Mutex<Option<HashMap<(String, String), Filing>>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut HashMap<(String, String), Filing>) -> T) -> T {
    let mut all = FILING.lock().unwrap_or_else(|e| e.into_inner());
    let all = all.get_or_insert_with(HashMap::new);
    all.retain(|_, f| f.since.elapsed() < KEPT);
    f(all)
}

/// `agent` is about to write handoff `key` with content `digest` into `workspace`.
pub fn begin(workspace: &str, key: &str, agent: &str, digest: &str) {
    with(|all| {
        if all.len() >= MAX {
            // Forgetting one only leaves its first receipt unguarded, as before.
            if let Some(oldest) = all
                .iter()
                .min_by_key(|(_, f)| f.since)
                .map(|(k, _)| k.clone())
            {
                all.remove(&oldest);
            }
        }
        all.insert(
            (workspace.to_string(), key.to_string()),
            Filing {
                agent: agent.to_string(),
                digest: digest.to_string(),
                since: Instant::now(),
                displaced_by: None,
            },
        );
    });
}

/// The filing of `key` is over (received, refused, or given up by its caller).
pub fn end(workspace: &str, key: &str) {
    with(|all| all.remove(&(workspace.to_string(), key.to_string())));
}

/// At the first receipt of `key` in `workspace` with content `digest`: the agent filing other
/// bytes under that key, if one is (those bytes are then marked displaced). The filing's own
/// bytes end it.
pub fn displaced(workspace: &str, key: &str, digest: &str) -> Option<String> {
    with(|all| {
        let at = (workspace.to_string(), key.to_string());
        let filing = all.get_mut(&at)?;
        if filing.digest == digest {
            all.remove(&at);
            return None;
        }
        filing.displaced_by = Some(digest.to_string());
        Some(filing.agent.clone())
    })
}

/// Whether the filing of `key` with content `digest` was displaced by other bytes before its
/// receipt (then it is over: it will not be received).
pub fn was_displaced(workspace: &str, key: &str, digest: &str) -> bool {
    with(|all| {
        let at = (workspace.to_string(), key.to_string());
        let hit = all
            .get(&at)
            .is_some_and(|f| f.digest == digest && f.displaced_by.is_some());
        if hit {
            all.remove(&at);
        }
        hit
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_filed_end_it_and_other_bytes_are_displacing() {
        begin("w-filing", "k", "alice", "d1");
        assert_eq!(displaced("w-filing", "k", "d1"), None);
        assert_eq!(
            displaced("w-filing", "k", "d2"),
            None,
            "ended by its receipt"
        );
        begin("w-filing", "k", "alice", "d1");
        assert_eq!(displaced("w-filing", "k", "d2").as_deref(), Some("alice"));
        assert!(was_displaced("w-filing", "k", "d1"));
        assert!(!was_displaced("w-filing", "k", "d1"), "told once");
        assert_eq!(displaced("other", "k", "d2"), None);
    }
}
