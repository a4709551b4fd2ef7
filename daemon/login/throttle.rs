//! Slows password guessing: failures are counted per account and per client address over a
//! window, and past a limit sign-in is refused (HTTP 429) until the window has passed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per account within `WINDOW` before it is locked for the rest of it.
pub const PER_ACCOUNT: u32 = 5;
/// Failures allowed per address: higher, since people share addresses (NAT, proxies).
pub const PER_ADDRESS: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Tables are cut back to this many entries, so a flood of names cannot grow memory.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct Throttle {
    accounts: Mutex<HashMap<String, Window>>,
    addresses: Mutex<HashMap<IpAddr, Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl Throttle {
    /// How long the caller must wait before trying again, if it must.
    pub fn wait(&self, account: &str, addr: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let account_wait = blocked(&self.accounts, account, PER_ACCOUNT, now);
        let addr_wait = addr.and_then(|a| blocked(&self.addresses, &a, PER_ADDRESS, now));
        account_wait.max(addr_wait)
    }

    pub fn failed(&self, account: &str, addr: Option<IpAddr>) {
        let now = Instant::now();
        count(&self.accounts, account.to_string(), now);
        if let Some(a) = addr {
            count(&self.addresses, a, now);
        }
    }

    /// A successful sign-in clears the account's count (not the address's: one good password
    /// must not reset a guesser working through other accounts from the same place).
    pub fn succeeded(&self, account: &str) {
        lock(&self.accounts).remove(account);
    }
}

fn lock<K, V>(m: &Mutex<HashMap<K, V>>) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn blocked<K, Q>(
    table: &Mutex<HashMap<K, Window>>,
    key: &Q,
    limit: u32,
    now: Instant,
) -> Option<Duration>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + ?Sized,
{
    let w = *lock(table).get(key)?;
    let elapsed = now.duration_since(w.started);
    (w.failures >= limit && elapsed < WINDOW).then(|| WINDOW - elapsed)
}

fn count<K: std::hash::Hash + Eq>(table: &Mutex<HashMap<K, Window>>, key: K, now: Instant) {
    let mut t = lock(table);
    if t.len() >= MAX_ENTRIES {
        t.retain(|_, w| now.duration_since(w.started) < WINDOW);
    }
    let w = t.entry(key).or_insert(Window {
        started: now,
        failures: 0,
    });
    if now.duration_since(w.started) >= WINDOW {
        *w = Window {
            started: now,
            failures: 0,
        };
    }
    w.failures += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_an_account_after_its_limit_and_not_others() {
        let t = Throttle::default();
        for _ in 0..PER_ACCOUNT {
            assert!(t.wait("rita", None).is_none());
            t.failed("rita", None);
        }
        assert!(t.wait("rita", None).is_some());
        assert!(t.wait("omar", None).is_none());
    }
}
