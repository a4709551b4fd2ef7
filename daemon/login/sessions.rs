//! Server-side sessions. The browser holds only a random id; the daemon keeps its sha256 with
//! who signed in, the CSRF token and the times that bound it (idle and absolute expiry).
//! Sessions are saved in `data_dir/sessions.json` so a restart does not sign everyone out;
//! the file holds hashes, so reading it does not let anyone in. The file is written by a
//! thread of its own, woken by a change: a sign-in never waits on a disk sync, and changes made
//! in a burst are written once.

use crate::clock::now_s;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

/// Most live sessions kept; the oldest are ended first past it.
const MAX_SESSIONS: usize = 10_000;
/// `last_seen` is saved at most this often per session (seconds): an idle timeout measured
/// after a restart may be this much longer, which saves a write per request.
const TOUCH_SAVE_S: u64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub created: u64,
    pub last_seen: u64,
}

pub struct Sessions {
    idle_s: u64,
    absolute_s: u64,
    shared: Arc<Shared>,
    /// A cluster's table, shared by its nodes: when set, it is the only truth (a session
    /// ended on one node is ended on all at once), and the file is not used.
    rows: Option<Arc<dyn SharedSessions>>,
}

/// Where a cluster's nodes keep their sessions (see `crate::cluster`), by the id's sha256.
pub trait SharedSessions: Send + Sync {
    /// Keeps `session` until `expires_at` (seconds since the epoch).
    fn put(&self, id_sha256: &str, session: &Session, expires_at: u64) -> std::io::Result<()>;
    /// The session, if it is kept and not past its expiry.
    fn get(&self, id_sha256: &str) -> std::io::Result<Option<Session>>;
    fn end(&self, id_sha256: &str) -> std::io::Result<()>;
}

/// What the requests and the saver thread share.
struct Shared {
    file: PathBuf,
    by_hash: Mutex<HashMap<String, Session>>,
    /// A change not yet written; the saver waits on `wake` for it.
    dirty: Mutex<bool>,
    wake: Condvar,
    /// Held from the table's snapshot to its rename into place, so the saver and a `flush`
    /// never rename an older table over a newer one.
    writing: Mutex<()>,
}

impl Shared {
    fn write(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = {
            let table = self.by_hash.lock().unwrap_or_else(|e| e.into_inner());
            match serde_json::to_vec(&*table) {
                Ok(b) => b,
                Err(_) => return,
            }
        };
        // Losing this file only signs people out: worth a warning, not a failed request.
        let kind = crate::workspace::fsync::Kind::Other;
        if let Err(e) = crate::workspace::write_atomic(&self.file, &bytes, kind) {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot save sessions");
        }
    }

    /// The saver: writes the table each time it changed, a burst of changes once.
    fn run(self: Arc<Self>) {
        loop {
            let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            while !*dirty {
                dirty = self.wake.wait(dirty).unwrap_or_else(|e| e.into_inner());
            }
            *dirty = false;
            drop(dirty);
            self.write();
        }
    }
}

pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Sessions {
    /// Loads saved sessions; an unreadable file signs everyone out (logged), nothing worse.
    pub fn load(
        file: PathBuf,
        idle_s: u64,
        absolute_s: u64,
        rows: Option<Arc<dyn SharedSessions>>,
    ) -> Sessions {
        let saved = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "sessions file unreadable; everyone signs in again");
                HashMap::new()
            }),
            Err(_) => HashMap::new(),
        };
        let shared = Arc::new(Shared {
            file,
            by_hash: Mutex::new(saved),
            dirty: Mutex::new(false),
            writing: Mutex::new(()),
            wake: Condvar::new(),
        });
        let saver = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("baton-sessions".into())
            .spawn(move || saver.run());
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the sessions saver; sessions will not survive a restart");
        }
        let sessions = Sessions {
            idle_s,
            absolute_s,
            shared,
            rows,
        };
        sessions.sweep();
        sessions
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.shared
            .by_hash
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn live(&self, s: &Session, now: u64) -> bool {
        now.saturating_sub(s.last_seen) < self.idle_s
            && now.saturating_sub(s.created) < self.absolute_s
    }

    /// When `s` ends unless it is used again.
    fn expiry(&self, s: &Session) -> u64 {
        (s.last_seen.saturating_add(self.idle_s)).min(s.created.saturating_add(self.absolute_s))
    }

    /// Starts a session for `user`; returns its id (for the cookie) and the session. A new id
    /// every time: the id is rotated at sign-in, so an id planted before cannot be used after.
    /// Fails only when a cluster's shared table cannot be written.
    pub fn start(&self, user: &str) -> std::io::Result<(String, Session)> {
        let id = random_token();
        let now = now_s();
        let session = Session {
            user: user.to_string(),
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        if let Some(rows) = &self.rows {
            rows.put(&hash(&id), &session, self.expiry(&session))?;
            return Ok((id, session));
        }
        {
            let mut t = self.table();
            if t.len() >= MAX_SESSIONS {
                t.retain(|_, s| now.saturating_sub(s.last_seen) < self.idle_s);
                if let Some(oldest) = t
                    .iter()
                    .min_by_key(|(_, s)| s.created)
                    .map(|(k, _)| k.clone())
                {
                    t.remove(&oldest);
                }
            }
            t.insert(hash(&id), session.clone());
        }
        self.save();
        Ok((id, session))
    }

    /// The live session with this id, its idle clock restarted; an expired one is ended.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = hash(id);
        let now = now_s();
        if let Some(rows) = &self.rows {
            return self.get_shared(rows.as_ref(), &key, now);
        }
        let mut t = self.table();
        let s = t.get_mut(&key)?;
        if !self.live(s, now) {
            t.remove(&key);
            drop(t);
            self.save();
            return None;
        }
        let save = now.saturating_sub(s.last_seen) >= TOUCH_SAVE_S;
        s.last_seen = now;
        let s = s.clone();
        drop(t);
        if save {
            self.save();
        }
        Some(s)
    }

    /// `get` in a cluster's table. A failed read answers "no session" (the person is asked to
    /// sign in again), never a session that may have been ended on another node.
    fn get_shared(&self, rows: &dyn SharedSessions, key: &str, now: u64) -> Option<Session> {
        let mut s = rows
            .get(key)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot read the shared sessions"))
            .ok()??;
        if !self.live(&s, now) {
            let _ = rows.end(key);
            return None;
        }
        if now.saturating_sub(s.last_seen) >= TOUCH_SAVE_S {
            s.last_seen = now;
            if let Err(e) = rows.put(key, &s, self.expiry(&s)) {
                tracing::warn!(error = %e, "cannot renew a shared session");
            }
        }
        Some(s)
    }

    /// Ends a session (sign-out). Returns whether there was one.
    pub fn end(&self, id: &str) -> bool {
        if let Some(rows) = &self.rows {
            return rows
                .end(&hash(id))
                .inspect_err(|e| tracing::warn!(error = %e, "cannot end a shared session"))
                .is_ok();
        }
        let gone = self.table().remove(&hash(id)).is_some();
        if gone {
            self.save();
        }
        gone
    }

    /// Ends every session of users no longer allowed to sign in.
    pub fn retain_users(&self, allowed: impl Fn(&str) -> bool) {
        self.table().retain(|_, s| allowed(&s.user));
        self.save();
    }

    fn sweep(&self) {
        let now = now_s();
        self.table().retain(|_, s| self.live(s, now));
    }

    /// Asks the saver to write the table; returns at once.
    fn save(&self) {
        *self.shared.dirty.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.wake.notify_one();
    }

    /// Writes the table now, on this thread (at shutdown, so the last changes are kept).
    pub fn flush(&self) {
        *self.shared.dirty.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.shared.write();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rotate_end_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sessions.json");
        let s = Sessions::load(file.clone(), 3600, 7200, None);
        let (a, _) = s.start("rita").unwrap();
        let (b, _) = s.start("rita").unwrap();
        assert_ne!(a, b);
        assert!(s.end(&a));
        assert!(s.get(&a).is_none());
        s.flush();
        let reloaded = Sessions::load(file.clone(), 3600, 7200, None);
        assert_eq!(reloaded.get(&b).unwrap().user, "rita");
        assert!(!std::fs::read_to_string(&file).unwrap().contains(&b));
        let expired = Sessions::load(file, 0, 7200, None);
        assert!(expired.get(&b).is_none());
    }

    #[test]
    fn a_session_past_a_timeout_ends_at_its_next_use_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sessions.json");
        let s = Sessions::load(file.clone(), 3600, 7200, None);
        let (idle, _) = s.start("rita").unwrap();
        let (old, _) = s.start("rita").unwrap();
        let (fresh, _) = s.start("rita").unwrap();
        // The clock is not waited for: the sessions' times are moved back instead.
        s.table().get_mut(&hash(&idle)).unwrap().last_seen -= 3600;
        s.table().get_mut(&hash(&old)).unwrap().created -= 7200;
        assert!(s.get(&idle).is_none());
        assert!(s.get(&old).is_none());
        assert_eq!(s.get(&fresh).unwrap().user, "rita");
        // Ended for good, in the file too.
        s.flush();
        let saved = std::fs::read_to_string(&file).unwrap();
        assert!(!saved.contains(&hash(&idle)) && !saved.contains(&hash(&old)));
        assert!(saved.contains(&hash(&fresh)));
    }
}
