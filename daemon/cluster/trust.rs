//! Nodes prove who they are to each other. The cluster keeps one secret key in the database
//! (`peer_key`, 32 random bytes made by the first node that starts on the schema); each node
//! reads it at start and again at each lease round, so a key deleted from the database
//! (`DELETE FROM peer_key`: rotation) is replaced by a new one, made by the first node to
//! look, and used by every node within a round. A request one node sends another, and that node's answer, carry an
//! HMAC-SHA256 under it (what they cover is the web layer's: `baton_web::peers::trust`), so a
//! process that does not know the key (one listening on a dead node's port, say) can neither
//! make a node act nor answer in a node's name. Each signed request names a nonce; the node
//! that receives it remembers the nonces of the replay window and refuses one seen twice.

use super::{ClusterError, Pool};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// How far a signed request's time may be from the receiving node's: older is refused.
pub const WINDOW: Duration = Duration::from_secs(60);

/// The cluster's key, and the nonces this node has accepted within the window.
pub struct Trust {
    key: RwLock<[u8; 32]>,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    nonces: HashSet<String>,
    /// The same nonces, oldest first, with when each may be forgotten.
    order: VecDeque<(Instant, String)>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trust { key: <secret> }")
    }
}

impl Trust {
    /// The cluster's key: made (once, by whichever node gets there first) if there is none yet.
    pub(super) fn load(pool: &Pool) -> Result<Trust, ClusterError> {
        let mut client = pool.get()?;
        Ok(Trust::with_key(current(&mut client)?))
    }

    /// Reads the cluster's key again (making one if it was deleted): at each lease round.
    pub(super) fn refresh(&self, client: &mut super::conn::Conn) -> Result<(), ClusterError> {
        let key = current(client)?;
        let mut ours = self.key.write().unwrap_or_else(|e| e.into_inner());
        if *ours != key {
            tracing::info!("the cluster's peer key changed (rotated): signing with the new one");
            *ours = key;
        }
        Ok(())
    }

    /// A handle on `key` (tests).
    pub fn with_key(key: [u8; 32]) -> Trust {
        Trust {
            key: RwLock::new(key),
            seen: Mutex::default(),
        }
    }

    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let key = *self.key.read().unwrap_or_else(|e| e.into_inner());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        // Each part with its length first: no two different lists of parts sign alike.
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The signature of `parts`, in hex.
    pub fn sign(&self, parts: &[&[u8]]) -> String {
        hex::encode(self.mac(parts).finalize().into_bytes())
    }

    /// Whether `signature` (hex) is that of `parts` (compared in constant time).
    pub fn verify(&self, parts: &[&[u8]], signature: &str) -> bool {
        let Ok(bytes) = hex::decode(signature.trim()) else {
            return false;
        };
        self.mac(parts).verify_slice(&bytes).is_ok()
    }

    /// A new nonce for a request.
    pub fn nonce() -> String {
        hex::encode(rand::random::<[u8; 16]>())
    }

    /// Whether `nonce` is new within the window (it is then remembered for twice the window,
    /// so a request replayed at either edge is still recognised).
    pub fn first_use(&self, nonce: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        while seen.order.front().is_some_and(|(until, _)| *until <= now) {
            if let Some((_, old)) = seen.order.pop_front() {
                seen.nonces.remove(&old);
            }
        }
        if !seen.nonces.insert(nonce.to_string()) {
            return false;
        }
        seen.order.push_back((now + 2 * WINDOW, nonce.to_string()));
        true
    }
}

/// The key in the database, made now if there is none (one statement: the row this node
/// inserted, or the one it found).
fn current(client: &mut super::conn::Conn) -> Result<[u8; 32], ClusterError> {
    let ours: [u8; 32] = rand::random();
    let row = client.query_one(
        "WITH made AS (
             INSERT INTO peer_key (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING RETURNING key
         )
         SELECT key FROM made UNION ALL SELECT key FROM peer_key WHERE id = 1 LIMIT 1",
        &[&&ours[..]],
    )?;
    let bytes: Vec<u8> = row.get(0);
    bytes
        .try_into()
        .map_err(|_| ClusterError::Schema("the cluster's peer_key is not 32 bytes".to_string()))
}

#[cfg(test)]
mod tests {
    use super::Trust;

    #[test]
    fn a_signature_holds_for_its_parts_only_and_a_nonce_is_accepted_once() {
        let trust = Trust::with_key([7; 32]);
        let sig = trust.sign(&[b"a", b"bc"]);
        assert!(trust.verify(&[b"a", b"bc"], &sig));
        assert!(
            !trust.verify(&[b"ab", b"c"], &sig),
            "parts are length-prefixed"
        );
        assert!(!trust.verify(&[b"a", b"bd"], &sig));
        assert!(!Trust::with_key([8; 32]).verify(&[b"a", b"bc"], &sig));
        assert!(!trust.verify(&[b"a", b"bc"], "not hex"));
        let n = Trust::nonce();
        assert!(trust.first_use(&n));
        assert!(!trust.first_use(&n), "a replay is refused");
        assert!(trust.first_use(&Trust::nonce()));
    }
}
