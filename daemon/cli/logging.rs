//! Logging to standard error, filtered by `BATON_LOG`, that never blocks or stops the daemon.
//!
//! tracing's own writer writes stderr inline, on whichever thread logs, and on a write error
//! it reports with `eprintln!`, which panics on a closed pipe: with stderr piped to a log
//! shipper that restarted (or to `head`), the thread that logged died, taking readiness or the
//! SIGTERM handler with it; with a full pipe every logging thread blocked. Here a line is
//! handed to one writer thread through a bounded queue and never waited for: when the queue
//! is full (nobody reads the pipe) the line is dropped, when stderr is closed it is dropped by
//! the writer thread, and the count of dropped lines is said with the next line written.

use super::LogFormat;
use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Lines queued for the writer thread before new ones are dropped.
const QUEUE_LINES: usize = 4096;
/// How long the end of the process waits for queued lines to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// ... and gives up sooner when the writer thread has written nothing for this long.
const STUCK: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Counts {
    /// Lines queued, and lines the writer thread is done with (written or dropped).
    queued: AtomicU64,
    done: AtomicU64,
    /// Lines lost since the last line written, for the next line to say.
    dropped: AtomicU64,
}

/// The `MakeWriter` of the subscriber: each event is one `write` of its whole line.
#[derive(Clone)]
struct Queue {
    tx: SyncSender<Vec<u8>>,
    counts: Arc<Counts>,
}

impl Write for Queue {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.tx.try_send(buf.to_vec()) {
            Ok(()) => self.counts.queued.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.counts.dropped.fetch_add(1, Ordering::Relaxed),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Queue {
    type Writer = Queue;
    fn make_writer(&'a self) -> Queue {
        self.clone()
    }
}

/// Held by `main`: when dropped, lets the writer thread write what is queued, for as long as
/// it makes progress (a full pipe that nobody reads must not hold up the exit).
pub struct LogGuard {
    counts: Arc<Counts>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        let deadline = Instant::now() + FLUSH_WAIT;
        let mut last = (self.counts.done.load(Ordering::Relaxed), Instant::now());
        while Instant::now() < deadline {
            let done = self.counts.done.load(Ordering::Relaxed);
            if done >= self.counts.queued.load(Ordering::Relaxed) {
                return;
            }
            if done != last.0 {
                last = (done, Instant::now());
            } else if last.1.elapsed() > STUCK {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Writes the queued lines to a copy of the stderr descriptor: through `std::io::stderr()`
/// a write blocked on a full pipe would hold its lock, and so block the panic message or the
/// last error line that `main` writes.
fn write_lines(rx: Receiver<Vec<u8>>, counts: Arc<Counts>) {
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        // No stderr to write to: every line is done as soon as it comes.
        rx.iter()
            .for_each(|_| _ = counts.done.fetch_add(1, Ordering::Relaxed));
        return;
    };
    let mut stderr = std::fs::File::from(fd);
    for line in rx {
        let dropped = counts.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note =
                format!("baton: {dropped} log lines dropped (standard error was full or closed)\n");
            let _ = stderr.write_all(note.as_bytes());
        }
        if stderr.write_all(&line).is_err() {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
        counts.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// Logging to standard error, filtered by `BATON_LOG`; colours only on a terminal. A
/// `BATON_LOG` that cannot be understood is an error (exit 2), not a silent default: the
/// operator who set it expects its effect.
pub fn init_tracing(format: LogFormat) -> Result<LogGuard, String> {
    let filter = log_filter()?;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (tx, rx) = sync_channel(QUEUE_LINES);
    let counts = Arc::new(Counts::default());
    let writer_counts = Arc::clone(&counts);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || write_lines(rx, writer_counts))
        .map_err(|e| format!("cannot start the log writer thread: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        // Its report of a failed write is an eprintln!, which panics on a closed stderr.
        .log_internal_errors(false)
        .with_writer(Queue {
            tx,
            counts: Arc::clone(&counts),
        });
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(LogGuard { counts })
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
/// tantivy logs every segment file it makes or deletes at info: an operator's log would be
/// mostly that. A directive naming tantivy in BATON_LOG overrides this.
const DEFAULT_LOG: &str = "info,tantivy=warn";

fn log_filter() -> Result<tracing_subscriber::EnvFilter, String> {
    use tracing_subscriber::EnvFilter;
    let text = match std::env::var("BATON_LOG") {
        Err(std::env::VarError::NotPresent) => return Ok(EnvFilter::new(DEFAULT_LOG)),
        Err(std::env::VarError::NotUnicode(_)) => return Err("BATON_LOG is not UTF-8".into()),
        Ok(text) if text.trim().is_empty() => return Ok(EnvFilter::new(DEFAULT_LOG)),
        Ok(text) => text,
    };
    let usage = "write a level (trace, debug, info, warn, error, off) or TARGET=LEVEL \
                 directives, comma-separated, e.g. BATON_LOG=debug or BATON_LOG=info,baton::app=debug";
    // tracing reads a bare word as a target to log at every level, so a misspelt level
    // ("verbose") would silence everything else: only levels and baton's targets are bare.
    for directive in text.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[']);
        if bare
            && !LEVELS.contains(&directive.to_ascii_lowercase().as_str())
            && !directive.starts_with("baton")
        {
            return Err(format!(
                "BATON_LOG: \"{directive}\" is not a level; {usage}"
            ));
        }
    }
    let text = match text.contains("tantivy") {
        true => text,
        false => format!("{text},tantivy=warn"),
    };
    EnvFilter::try_new(&text)
        .map_err(|e| format!("BATON_LOG: \"{text}\" cannot be read ({e}); {usage}"))
}
