//! The `baton` command: parse the command line, set up logging, run one command, exit with
//! its code. Everything else lives in the library.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    if let Err(e) = cli::init_tracing(args.log_format) {
        eprintln!("baton: {e}");
        return ExitCode::from(2);
    }
    match cli::dispatch(args.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("baton: {e:#}");
            ExitCode::from(1)
        }
    }
}
