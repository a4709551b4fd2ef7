//! Browsers' push subscriptions, by reviewer, in `data_dir/push/subscriptions.json`: read
//! once, kept in memory, and rewritten whole (atomically, synced) on each change, so a crash
//! leaves the old list or the new one. A subscription is named by a digest of its endpoint:
//! the same browser subscribing again replaces its entry rather than adding one.

use crate::workspace::fsync::Kind;
use crate::workspace::write_atomic;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most subscriptions one reviewer keeps (browsers, devices); subscribing past it drops the
/// oldest.
pub const MAX_PER_REVIEWER: usize = 10;

/// One browser's subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_` and 64 bits of the endpoint's SHA-256.
    pub id: String,
    pub reviewer: String,
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key (uncompressed point), base64url.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The id of the subscription with `endpoint`.
pub fn id_of(endpoint: &str) -> String {
    format!(
        "sub_{}",
        hex::encode(&Sha256::digest(endpoint.as_bytes())[..8])
    )
}

pub struct Subscriptions {
    path: PathBuf,
    /// By reviewer, oldest first.
    all: Mutex<BTreeMap<String, Vec<Subscription>>>,
}

impl Subscriptions {
    /// The subscriptions kept in `data_dir` (none yet: empty).
    pub fn open(data_dir: &Path) -> io::Result<Subscriptions> {
        let path = data_dir.join("push").join("subscriptions.json");
        let all = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a list of push subscriptions ({e}); move it aside to start with none (reviewers then subscribe again on /reviewers)",
                        path.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Subscriptions {
            path,
            all: Mutex::new(all),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<Subscription>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn save(&self, all: &BTreeMap<String, Vec<Subscription>>) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(all).expect("subscriptions serialize");
        write_atomic(&self.path, &bytes, Kind::Other)
    }

    /// Keeps `sub` for its reviewer (replacing one of the same endpoint, whoever's it was:
    /// a browser signed in as someone else now is theirs). Kept once on disk.
    pub fn put(&self, sub: Subscription) -> io::Result<()> {
        let mut all = self.lock();
        let mut next = all.clone();
        for subs in next.values_mut() {
            subs.retain(|s| s.id != sub.id);
        }
        let mine = next.entry(sub.reviewer.clone()).or_default();
        mine.push(sub);
        if mine.len() > MAX_PER_REVIEWER {
            mine.remove(0);
        }
        next.retain(|_, subs| !subs.is_empty());
        self.save(&next)?;
        *all = next;
        Ok(())
    }

    /// Forgets subscription `id` of `reviewer` (any reviewer's when `None`). Returns it, if
    /// it was kept.
    pub fn remove(&self, reviewer: Option<&str>, id: &str) -> io::Result<Option<Subscription>> {
        let mut all = self.lock();
        let found = all
            .values()
            .flatten()
            .find(|s| s.id == id && reviewer.is_none_or(|r| r == s.reviewer))
            .cloned();
        let Some(gone) = found else { return Ok(None) };
        let mut next = all.clone();
        if let Some(subs) = next.get_mut(&gone.reviewer) {
            subs.retain(|s| s.id != id);
        }
        next.retain(|_, subs| !subs.is_empty());
        self.save(&next)?;
        *all = next;
        Ok(Some(gone))
    }

    /// `reviewer`'s subscriptions, oldest first.
    pub fn of(&self, reviewer: &str) -> Vec<Subscription> {
        self.lock().get(reviewer).cloned().unwrap_or_default()
    }

    pub fn get(&self, id: &str) -> Option<Subscription> {
        self.lock().values().flatten().find(|s| s.id == id).cloned()
    }

    /// How many are kept, everyone's.
    pub fn count(&self) -> usize {
        self.lock().values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{id_of, Subscription, Subscriptions};

    fn sub(reviewer: &str, endpoint: &str) -> Subscription {
        Subscription {
            id: id_of(endpoint),
            reviewer: reviewer.into(),
            endpoint: endpoint.into(),
            p256dh: "k".into(),
            auth: "a".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn subscriptions_survive_a_reopen_and_one_endpoint_is_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let subs = Subscriptions::open(dir.path()).unwrap();
        subs.put(sub("rita", "https://push.example/1")).unwrap();
        subs.put(sub("rita", "https://push.example/2")).unwrap();
        // The same browser, now signed in as bob: bob's.
        subs.put(sub("bob", "https://push.example/1")).unwrap();
        let again = Subscriptions::open(dir.path()).unwrap();
        assert_eq!(again.of("rita").len(), 1);
        assert_eq!(again.of("bob")[0].endpoint, "https://push.example/1");
        let id = id_of("https://push.example/2");
        assert!(
            again.remove(Some("bob"), &id).unwrap().is_none(),
            "not bob's"
        );
        assert!(again.remove(None, &id).unwrap().is_some());
        assert_eq!(Subscriptions::open(dir.path()).unwrap().count(), 1);
    }
}
