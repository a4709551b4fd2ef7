//! The `baton` command: parse the command line, set up logging, run one command, exit with
//! its code. Everything else lives in the library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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

/// jemalloc instead of glibc's allocator. glibc's gave each thread that allocates an arena
/// of its own (up to 8 per core) and kept what each freed: a search reindex peaked at 3x the
/// heap with its default (two arenas fixed that), and with two arenas the pages that build many
/// small values a request (`/events`) spent ~45 % of the daemon's CPU in malloc and free.
/// jemalloc doubled `/events`' throughput and held the least memory of the three tried
/// (glibc, mimalloc, jemalloc; docs/BENCHMARKS.md, "A quiet machine at W = 2,000").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read before `main`: pages freed are given back to the system after
/// 1 s instead of 10 s, at once once lazily freed. A start builds and drops much (the stores'
/// snapshots read, the orders filed): at 10,000 workspaces x 110,000 handoffs the RSS 20 s
/// after ready was 510 MB with the defaults and 496 MB with these. `_RJEM_MALLOC_CONF` in
/// the environment still overrides them.
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";
