//! The `baton` command: parse the command line, set up logging, run one command, exit with
//! its code. Everything else lives in the library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = cli::Cli::parse();
    let _log = match cli::init_tracing(args.log_format) {
        Ok(guard) => guard,
        Err(e) => {
            say_error(&e);
            return ExitCode::from(2);
        }
    };
    match cli::dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            say_error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}

/// The last word on standard error; `eprintln!` would panic if stderr is a closed pipe.
fn say_error(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "baton: {message}");
}

/// glibc gives threads that allocate their own malloc arenas (up to 8 per core) and keeps what
/// each arena freed. The search indexer, the index writer and tantivy's threads hand 10 KB
/// documents from one to another: a reindex of 322 MB peaked at 598 MB of heap with the
/// default and at 179 MB with two arenas, and ran faster (`cargo bench --bench search`).
/// An operator's own `MALLOC_ARENA_MAX` is left as set.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; it runs before any other thread
        // exists, so no allocation races it.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
