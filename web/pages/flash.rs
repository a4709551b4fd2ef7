//! Post/Redirect/Get for the forms of the handoff and workspace pages: every post answers 303
//! back to its page, so a reload never posts again. What the post has to say there (a
//! refusal's reason and what was typed, or what was done) waits here, in memory, for that
//! session's next GET of that page, which shows it once. The redirect also carries a short
//! code (`?refused=decision`, `?claimed=1`, ...) from a fixed list, so the page still says
//! something if the message is gone (a restart); the code never carries text of its own.

use super::decision_form::Draft;
use baton::login::SignedIn;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// A message for one page of one session.
#[derive(Default)]
pub struct Flash {
    pub error: Option<String>,
    pub notice: Option<String>,
    /// The decision form as it was posted, to fill it in again after a refusal.
    pub draft: Option<Draft>,
}

/// Messages not fetched in time are dropped; a page is fetched right after its redirect.
const KEEP: Duration = Duration::from_secs(300);
/// Most messages held at once (each is one session's, for one page); past it the oldest go.
const MAX: usize = 512;

type Key = (String, String);
static FLASHES: LazyLock<Mutex<HashMap<Key, (Instant, Flash)>>> = LazyLock::new(Default::default);

/// Keyed by the session's CSRF token, which is its own secret and never in a URL.
fn key(s: &SignedIn, page: &str) -> Key {
    (s.csrf.clone(), page.to_string())
}

/// Leaves `flash` for `s`'s next view of `page` (a path such as `/handoffs/k`).
pub fn put(s: &SignedIn, page: &str, flash: Flash) {
    let mut all = FLASHES.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    all.retain(|_, (at, _)| now.duration_since(*at) < KEEP);
    while all.len() >= MAX {
        let oldest = all
            .iter()
            .min_by_key(|(_, (at, _))| *at)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => all.remove(&k),
            None => break,
        };
    }
    all.insert(key(s, page), (now, flash));
}

/// The message left for `s`'s view of `page`, taken (shown once).
pub fn take(s: &SignedIn, page: &str) -> Option<Flash> {
    let mut all = FLASHES.lock().unwrap_or_else(|e| e.into_inner());
    let (at, flash) = all.remove(&key(s, page))?;
    (at.elapsed() < KEEP).then_some(flash)
}
