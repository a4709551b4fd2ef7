//! Fault injection points for tests (debug builds only; release builds never read the
//! variables, so no environment can slow or fail a real daemon's writes):
//! - `BATON_TEST_PAUSE_WRITE=<file name>:<ms>`: every write of a file of that name waits that
//!   long before it opens the workspace folder, so a test can swap the folder at a chosen step
//!   of a decision (after its audit line, before its copies);
//! - `BATON_TEST_STALL_AUDIT_SYNC=<path>`: while a file is at that path, the sync of an audit
//!   append waits, and fails with an I/O error once the file is gone: a share that stopped
//!   answering for longer than the node's lease, then failed the write;
//! - `BATON_TEST_STALL_AUDIT_WRITE=<path>`: while a file is at that path, an audit append waits
//!   between its fence check and its write (and `<path>.held` is made once one does): a node
//!   paused in that window;
//! - `BATON_TEST_STALL_COPY_WRITE=<path>`: while a file is at that path, a workspace file
//!   write (a published copy, `decision.json`) of the name the file holds waits between its
//!   fence check and the rename that makes it visible (and `<path>.held` is made once one
//!   does): a node paused there while the lease moves on writes late when it wakes. The file
//!   may hold `<name> <n>`: the first n - 1 writes of that name made while it is there pass,
//!   and the n-th and later wait (a decision writes its record copy, then the root's
//!   `decision.json`: `decision.json 2` holds the root's);
//! - `BATON_TEST_STALL_TAKE_BACK=<path>`: while a file is at that path, the take-back of a
//!   failed audit append waits after its lease check, before it reads the log back (and
//!   `<path>.held` is made once it does): a node paused there, or another writer meanwhile;
//! - `BATON_TEST_STALL_SERVE=<path>`: while a file is at that path holding a workspace's name,
//!   that workspace waits after its load and before it is served (and `<path>.held` is made
//!   once it does): what its load found, for a workspace not served yet.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The environment variable a debug build reads the pause from.
pub const PAUSE_WRITE_VAR: &str = "BATON_TEST_PAUSE_WRITE";

/// Waits before a write of the file `name`, if a debug build was asked to.
pub(super) fn pause_before_write(name: &OsStr) {
    if !cfg!(debug_assertions) {
        return;
    }
    static PAUSE: OnceLock<Option<(OsString, Duration)>> = OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        let value = std::env::var(PAUSE_WRITE_VAR).ok()?;
        let (file, ms) = value.rsplit_once(':')?;
        Some((file.into(), Duration::from_millis(ms.parse().ok()?)))
    });
    if let Some((file, wait)) = pause {
        if file == name {
            std::thread::sleep(*wait);
        }
    }
}

/// The environment variable naming the file that stalls audit syncs.
pub const STALL_AUDIT_SYNC_VAR: &str = "BATON_TEST_STALL_AUDIT_SYNC";

/// An audit append's sync stalled and failed, if a debug build was asked to.
pub fn stalled_audit_sync() -> Option<std::io::Error> {
    if !cfg!(debug_assertions) {
        return None;
    }
    static STALL: OnceLock<Option<PathBuf>> = OnceLock::new();
    let file = STALL
        .get_or_init(|| std::env::var_os(STALL_AUDIT_SYNC_VAR).map(PathBuf::from))
        .as_ref()?;
    if !file.exists() {
        return None;
    }
    while file.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(std::io::Error::other(
        "the share stopped answering (a test's fault)",
    ))
}

/// The environment variable naming the file that holds audit appends between their fence
/// check and their write (debug builds only): while a file is at that path, each append
/// waits there, and `<path>.held` is made once one does, so a test can pause the node or
/// move its lease exactly in that window.
pub const STALL_AUDIT_WRITE_VAR: &str = "BATON_TEST_STALL_AUDIT_WRITE";

/// Waits between an append's fence check and its write, if a debug build was asked to.
pub fn stall_audit_write() {
    static STALL: OnceLock<Option<PathBuf>> = OnceLock::new();
    if let Some(file) = stall_file(&STALL, STALL_AUDIT_WRITE_VAR).filter(|f| f.exists()) {
        hold(file);
    }
}

/// The file a debug build's stall point `var` names (read once); none in a release build.
fn stall_file(cell: &'static OnceLock<Option<PathBuf>>, var: &str) -> Option<&'static Path> {
    if !cfg!(debug_assertions) {
        return None;
    }
    cell.get_or_init(|| std::env::var_os(var).map(PathBuf::from))
        .as_deref()
}

/// Holds the caller while `file` exists, having made `<file>.held` to say one is held.
fn hold(file: &Path) {
    let mut held = file.as_os_str().to_os_string();
    held.push(".held");
    let _ = std::fs::write(&held, b"");
    while file.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The environment variable naming the file that holds workspace file writes of one name
/// (the file's content) between their fence check and their rename (debug builds only).
pub const STALL_COPY_WRITE_VAR: &str = "BATON_TEST_STALL_COPY_WRITE";

/// Waits between a write's fence check and its rename, if a debug build was asked to hold
/// writes of files named `name` (from the n-th such write on, see the module doc).
pub fn stall_copy_write(name: &OsStr) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static STALL: OnceLock<Option<PathBuf>> = OnceLock::new();
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let Some(file) = stall_file(&STALL, STALL_COPY_WRITE_VAR) else {
        return;
    };
    let Ok(asked) = std::fs::read(file) else {
        return;
    };
    let asked = String::from_utf8_lossy(&asked);
    let mut words = asked.split_whitespace();
    if words.next().map(str::as_bytes) != Some(name.as_encoded_bytes()) {
        return;
    }
    let from: usize = words.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    if SEEN.fetch_add(1, Ordering::AcqRel) + 1 >= from {
        hold(file);
    }
}

/// The environment variable naming the file that holds a workspace between its load and its
/// serving (debug builds only; the file holds the workspace's name).
pub const STALL_SERVE_VAR: &str = "BATON_TEST_STALL_SERVE";

/// Waits after the load of the workspace `name` and before it is served, if a debug build
/// was asked to.
pub fn stall_serve(name: &str) {
    static STALL: OnceLock<Option<PathBuf>> = OnceLock::new();
    let Some(file) = stall_file(&STALL, STALL_SERVE_VAR) else {
        return;
    };
    if std::fs::read_to_string(file).is_ok_and(|held| held.trim() == name) {
        hold(file);
    }
}

/// The environment variable naming the file that holds a failed audit append's take-back
/// between its lease check and its read-back (debug builds only).
pub const STALL_TAKE_BACK_VAR: &str = "BATON_TEST_STALL_TAKE_BACK";

/// Waits in a failed append's take-back after its lease check, if a debug build was asked to.
pub fn stall_take_back() {
    static STALL: OnceLock<Option<PathBuf>> = OnceLock::new();
    if let Some(file) = stall_file(&STALL, STALL_TAKE_BACK_VAR).filter(|f| f.exists()) {
        hold(file);
    }
}
