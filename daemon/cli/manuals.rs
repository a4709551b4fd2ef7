//! `baton completions SHELL` and `baton man [--dir DIR]`: shell completions and manual pages
//! generated from the command-line definitions themselves, so they can never disagree with
//! what `baton` accepts. The Debian package ships both (packaging/build-deb).

use anyhow::Context;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut command = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "baton", &mut out);
    write_stdout(&out)
}

pub fn man(dir: Option<&Path>) -> anyhow::Result<ExitCode> {
    let command = super::Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the folder", dir.display()))?;
            // One page per command and sub-command: baton.1, baton-serve.1, ...
            clap_mangen::generate_to(command, dir)
                .with_context(|| format!("{}: cannot write the manual pages", dir.display()))?;
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command).render(&mut out)?;
            write_stdout(&out)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes generated text; a closed pipe (`baton man | head`) is not an error.
fn write_stdout(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}
