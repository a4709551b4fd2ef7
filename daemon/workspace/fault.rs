//! A fault injection point for the tests of folder swaps (debug builds only): with
//! `BATON_TEST_PAUSE_WRITE=<file name>:<ms>` every write of a file of that name waits that
//! long before it opens the workspace folder, so a test can swap the folder at a chosen step
//! of a decision (after its audit line, before its copies). Release builds never read the
//! variable, so no environment can slow a real daemon's writes.

use std::ffi::{OsStr, OsString};
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
