//! The daemon's one wall clock: every time that decides behaviour (event and record times,
//! escalations and deadlines, stalls, session and lock expiry, the agenda's due times, the
//! outbox's retry times, the ages the pages show) is read here.
//!
//! Production reads the system clock. A debug build started with `BATON_TEST_CLOCK=<file>`
//! adds the offset written in that file (seconds, e.g. `90` or `1.5`), read again at every
//! reading, so a test moves time forward by rewriting the file instead of sleeping; the
//! once-a-second housekeeping reads the clock each round, so a due time passed by a move
//! fires within a second without any other wake-up. Release builds never look at the
//! variable (`from_var` is compiled without it), so no environment can skew a real daemon.
//!
//! Not here: intervals the daemon measures on itself (settle windows, timeouts, latencies)
//! use `std::time::Instant`, which no wall clock may move; file times compared with
//! modification times (a file's age) stay on the system clock the file system uses; and the
//! timestamp a webhook signature carries is for the receiver's clock.
//!
//! One process, one clock: a value held in a `OnceLock`, not passed through every layer,
//! because the CLI's commands, the outbox's threads, the lock table and the core all stamp
//! times and must agree.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;

/// The environment variable a debug build reads the offset file's path from.
pub const TEST_CLOCK_VAR: &str = "BATON_TEST_CLOCK";

/// A wall clock: the system's, or (debug builds, tests) the system's moved by an offset file.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_file: Option<PathBuf>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// The clock the environment asks for: see the module's note.
    pub fn from_env() -> Clock {
        Clock::from_var(std::env::var_os(TEST_CLOCK_VAR).map(PathBuf::from))
    }

    /// The clock for the value of `BATON_TEST_CLOCK`, which only a debug build honours.
    pub fn from_var(offset_file: Option<PathBuf>) -> Clock {
        if cfg!(debug_assertions) {
            Clock { offset_file }
        } else {
            Clock::system()
        }
    }

    /// Now.
    pub fn now(&self) -> SystemTime {
        let now = SystemTime::now();
        match self.offset() {
            Some(offset) => now + offset,
            None => now,
        }
    }

    /// Whether a test moves this clock (a debug build started with `BATON_TEST_CLOCK`).
    pub fn is_driven(&self) -> bool {
        self.offset_file.is_some()
    }

    /// The offset in the file, if any: a file missing or unreadable (a test rewriting it
    /// atomically never shows half a number) counts as none.
    fn offset(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(self.offset_file.as_ref()?).ok()?;
        let secs = text.trim().parse::<f64>().ok()?;
        Duration::try_from_secs_f64(secs).ok()
    }
}

/// This process's clock, read from the environment once.
pub fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(Clock::from_env)
}

/// Now.
pub fn now() -> SystemTime {
    clock().now()
}

/// How far a test has moved this process's clock (zero unless a debug build's test drives it).
pub fn offset() -> Duration {
    clock().offset().unwrap_or_default()
}

/// A monotonic instant that moves with the test clock: for the few intervals that must agree
/// with times kept elsewhere by the same clock (a cluster's leases, whose expiry is the
/// database's time plus this offset; see `crate::cluster::clock`). Production: `Instant::now()`
/// plus the time the machine slept since this process began: `Instant` stops while the
/// machine (or its VM) is suspended, and a lease that ran out in the database meanwhile must
/// not look renewed moments ago when the node wakes.
pub fn instant() -> Instant {
    Instant::now() + slept() + offset()
}

/// How long the machine has been suspended since this process first asked: CLOCK_BOOTTIME
/// goes on counting while the machine sleeps, CLOCK_MONOTONIC (what `Instant` reads) does not.
fn slept() -> Duration {
    static BASE: OnceLock<Duration> = OnceLock::new();
    let asleep = boot_ahead();
    asleep.saturating_sub(*BASE.get_or_init(|| asleep))
}

/// How far CLOCK_BOOTTIME is ahead of CLOCK_MONOTONIC: the machine's sleep since it booted
/// (plus the few nanoseconds between the two reads).
fn boot_ahead() -> Duration {
    fn read(clock: libc::clockid_t) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write; both clocks exist on every Linux since 2.6.39.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        if rc != 0 {
            return Duration::ZERO;
        }
        Duration::new(
            ts.tv_sec.max(0) as u64,
            ts.tv_nsec.clamp(0, 999_999_999) as u32,
        )
    }
    let monotonic = read(libc::CLOCK_MONOTONIC);
    read(libc::CLOCK_BOOTTIME).saturating_sub(monotonic)
}

/// Now, as a UTC date-time.
pub fn now_utc() -> OffsetDateTime {
    OffsetDateTime::from(now())
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Now, in Unix seconds.
pub fn now_s() -> u64 {
    since_epoch().as_secs()
}

fn since_epoch() -> Duration {
    now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Now as RFC 3339 in UTC, always with milliseconds, so that times compare correctly as
/// strings.
pub fn now_rfc3339() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now_utc().format(&format).expect("UTC times always format")
}

#[cfg(test)]
mod tests {
    use super::Clock;
    use std::time::{Duration, SystemTime};

    fn ahead(clock: &Clock) -> Duration {
        clock
            .now()
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }

    #[test]
    fn the_leases_instant_counts_the_machines_sleep_since_the_process_began() {
        // The boot clock is ahead of the monotonic one by the machine's sleep since boot: no
        // sleep happens during the test, so the two move together.
        let ahead = super::boot_ahead();
        std::thread::sleep(Duration::from_millis(20));
        let later = super::boot_ahead();
        assert!(
            later.abs_diff(ahead) < Duration::from_millis(5),
            "{ahead:?} {later:?}"
        );
        assert!(super::slept() < Duration::from_millis(5));
    }

    #[test]
    fn a_debug_build_adds_the_offset_file_and_a_release_build_ignores_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offset");
        let clock = Clock::from_var(Some(file.clone()));
        assert!(
            ahead(&clock) < Duration::from_secs(60),
            "no file: no offset"
        );
        std::fs::write(&file, "3600\n").unwrap();
        let moved = ahead(&clock) > Duration::from_secs(3500);
        assert_eq!(moved, cfg!(debug_assertions));
        std::fs::write(&file, "not a number").unwrap();
        assert!(ahead(&clock) < Duration::from_secs(60), "unreadable: none");
        assert!(ahead(&Clock::system()) < Duration::from_secs(60));
    }
}
