//! The command line of SPEC section 8.

mod admin;
mod agent;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "A human-in-the-loop staging area for AI agents"
)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon (default config: ./baton.toml if present, else the embedded default).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Create a workspace folder (inbox/, checkpoints/, .baton/).
    Init { dir: PathBuf },
    /// Validate a handoff or checkpoint file; one line per problem: pointer line:column: message.
    Validate {
        file: PathBuf,
        /// What the file is; by default guessed from its version field.
        #[arg(long, value_enum)]
        kind: Option<DocKind>,
    },
    /// Validate FILE and write it atomically as DIR/handoff.json.
    Submit { dir: PathBuf, file: PathBuf },
    /// Block until the handoff in DIR is decided; print decision.json; exit by outcome.
    Wait {
        dir: PathBuf,
        /// Give up after this many seconds (exit 7).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Print the JSON Schema of a contract document.
    Schema {
        #[arg(value_enum)]
        kind: DocKind,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Print an argon2id hash of a password (read from standard input when it is not a terminal).
    HashPassword,
}

/// A contract document, as named on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum DocKind {
    Handoff,
    Checkpoint,
    Decision,
}

impl From<DocKind> for baton::contract::schema::Kind {
    fn from(kind: DocKind) -> Self {
        match kind {
            DocKind::Handoff => Self::Handoff,
            DocKind::Checkpoint => Self::Checkpoint,
            DocKind::Decision => Self::Decision,
        }
    }
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of DIR/.baton/events.jsonl (and its end, against the daemon's anchor).
    Verify {
        dir: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Acknowledge tampering that `audit verify` reports, after review (recorded in data_dir).
    Ack {
        dir: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Who acknowledges (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config } => serve::serve(config.as_deref()),
        Command::Init { dir } => admin::init(&dir),
        Command::Validate { file, kind } => agent::validate(&file, kind.map(Into::into)),
        Command::Submit { dir, file } => agent::submit(&dir, &file),
        Command::Wait { dir, timeout } => agent::wait(&dir, timeout),
        Command::Schema { kind } => admin::schema(kind.into()),
        Command::Audit {
            command: AuditCommand::Verify { dir, config },
        } => admin::audit_verify(&dir, config.as_deref()),
        Command::Audit {
            command: AuditCommand::Ack { dir, config, by },
        } => admin::audit_ack(&dir, config.as_deref(), by),
        Command::HashPassword => admin::hash_password(),
    }
}
