//! The command line of SPEC section 8.

#[macro_use]
mod print;

mod admin;
mod agent;
mod api;
mod backup;
mod claude_hook;
mod cluster;
mod daemon_user;
mod doctor;
mod evidence;
mod export;
mod locks;
mod logging;
mod manuals;
mod mcp;
mod plain_http;
mod policy;
mod receipts;
mod repair;
mod restore;
mod run;
mod search;
mod serve;
mod submit;
mod tools_io;
mod trust;
mod withdraw;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

pub use logging::init_tracing;

const CONFIG_HELP: &str =
    "Configuration file [default: ./baton.toml if it exists, else the embedded default]";

const WAIT_EXIT_CODES: &str = "\
Exit codes:
  0  approved
  1  error (no workspace, no handoff.json, ...)
  2  usage
  3  rejected
  4  changes_requested
  5  invalid (decision.json lists the problems)
  6  expired
  7  timeout (no decision within --timeout)
  8  reassigned
  9  withdrawn (superseded by a newer handoff)
  10 another revision under the key was decided, not the one submitted (nothing is printed:
     the decision answers bytes this wait was not pinned to)";

const WITHDRAW_EXIT_CODES: &str = "\
Exit codes:
  0  withdrawn (the decision is printed)
  1  error (BATON_URL or BATON_TOKEN missing, BATON_URL plain http to another host,
     the daemon unreachable or failing)
  2  usage
  3  not yours (another agent's handoff, or a reviewer who is not an admin)
  4  no such handoff
  5  decided already (the decision in place is printed)";

/// `baton --version`: the package's version and the git commit it was built from (see
/// build.rs; "unknown" outside a git checkout).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BATON_GIT_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(
    name = "baton",
    version = VERSION,
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
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Create a workspace folder (inbox/, checkpoints/, .baton/) and say whether the daemon's
    /// configuration covers it.
    Init {
        /// The workspace folder to create (made if missing; running init again changes nothing)
        dir: PathBuf,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Validate a handoff or checkpoint file; one line per problem: pointer line:column: message.
    Validate {
        /// The file to check; a path with a checkpoints/ folder in it is a checkpoint
        file: PathBuf,
        /// What the file is [default: by its name (handoff.json, decision.json), a checkpoint
        /// under checkpoints/, else by its version field, else a handoff; a .yaml/.yml file is
        /// a handoff in YAML]
        #[arg(long, value_enum)]
        kind: Option<DocKind>,
    },
    /// Check FILE as the daemon will (schema, artifacts, decided ids, limits of ./baton.toml)
    /// and write it atomically as DIR/handoff.json.
    Submit {
        /// The workspace folder (has .baton/)
        dir: PathBuf,
        /// The handoff to submit (JSON, or YAML when named .yaml/.yml: written as
        /// DIR/handoff.yaml or DIR/handoff.yml)
        file: PathBuf,
        /// Print one JSON object instead of the "submitted" line: `key`, `path` (the file
        /// written) and `handoff_sha256`, the content digest every decision on these bytes
        /// carries (compare it with decision.json's, or wait with --submitted FILE)
        #[arg(long)]
        json: bool,
    },
    /// Block until the handoff in DIR is decided; print decision.json; exit by outcome.
    #[command(after_help = WAIT_EXIT_CODES)]
    Wait {
        /// The workspace folder whose handoff.json to wait on
        dir: PathBuf,
        /// The key of the handoff you submitted (its `id`): refuse (exit 1) when another is in
        /// place, instead of waiting on whatever handoff is there when the wait begins (which
        /// a writer of the share may have put there, with another handoff's genuine decision)
        #[arg(long, value_name = "KEY")]
        handoff: Option<String>,
        /// The handoff file you submitted (as given to `baton submit`): take only a decision
        /// on exactly those bytes, so a rewrite under the same id, even one made before the
        /// wait began, is never taken for it (exit 10 when that rewrite is decided)
        #[arg(long, value_name = "FILE", requires = "handoff")]
        submitted: Option<PathBuf>,
        /// Give up after this many seconds (exit 7).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
        /// Take only a decision signed by one of these keys (lines of `baton keys`) whose
        /// approved artifacts are unchanged; a forged or stale one is warned about and not
        /// taken [default: the file BATON_KEY names, else the keys of the daemon at
        /// BATON_URL, else none: exit 1 unless --unchecked]
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// With no key to check with (no --key, BATON_KEY or BATON_URL), take decision.json
        /// as written, unchecked: anyone who can write the workspace can write it (also
        /// BATON_UNCHECKED=1)
        #[arg(long, conflicts_with = "key")]
        unchecked: bool,
    },
    /// Withdraw your own pending handoff KEY through the daemon (BATON_URL: https://, or
    /// http:// on this host; and your agent's BATON_TOKEN): it is closed with outcome
    /// withdrawn; prints the decision.
    #[command(after_help = WITHDRAW_EXIT_CODES)]
    Withdraw {
        /// The handoff's key (its id)
        key: String,
        /// Why, kept as the decision's comment (at most 1,024 characters)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Take (or renew: the same owner again) an advisory lock on a workspace file. Prints the
    /// grant as JSON ({path, owner, token, expires_at, ...}); held by another owner: exit 1,
    /// naming the holder, purpose and expiry. Works with or without a running daemon.
    Lock {
        /// The workspace folder (has .baton/)
        dir: PathBuf,
        /// The file to lock, relative to the workspace (e.g. inbox/report.md; need not exist)
        path: String,
        /// Who holds the lock (an agent's name)
        #[arg(long)]
        owner: String,
        /// Seconds until the lock expires unless renewed (1 to 86400)
        #[arg(long, value_name = "SECS", default_value_t = baton::locks::DEFAULT_TTL_S)]
        ttl: u64,
        /// What the lock is for, shown to whoever is refused
        #[arg(long, value_name = "TEXT")]
        purpose: Option<String>,
    },
    /// Release a lock you hold (exit 1 if another owner, or a newer grant, holds it).
    Unlock {
        /// The workspace folder (has .baton/)
        dir: PathBuf,
        /// The locked file, relative to the workspace
        path: String,
        /// The lock's owner
        #[arg(long)]
        owner: String,
        /// The fencing token of your grant: refused if the lock was taken over since
        #[arg(long)]
        token: Option<u64>,
    },
    /// List the locks in force in a workspace.
    Locks {
        /// The workspace folder (has .baton/)
        dir: PathBuf,
        /// Print a JSON array instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Search artifacts, handoffs (every revision), checkpoints and decisions. Reads the index
    /// in data_dir directly: works with the daemon running or not. Exit 1 when nothing matches.
    Search {
        /// Words, "phrases", prefix*, OR, -word, and filters: workspace: kind: agent: outcome:
        /// trigger: key: task: path: after:DATE before:DATE
        #[arg(required = true, num_args = 1..)]
        query: Vec<String>,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// Print the answer as JSON (the shape of GET /api/v1/search).
        #[arg(long)]
        json: bool,
        /// Only this workspace.
        #[arg(long)]
        workspace: Option<String>,
        /// Only this kind: artifact, handoff, checkpoint or decision.
        #[arg(long, value_parser = ["artifact", "handoff", "checkpoint", "decision"])]
        kind: Option<String>,
        /// Hits to show (1..=100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// Hits to skip (paging).
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// Read every artifact, handoff, checkpoint and decision again into the search index.
    /// Safe while the daemon runs (the daemon then does the work and this shows its progress).
    Reindex {
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Print the JSON Schema of a contract document, or of the lines of `baton export`.
    Schema {
        #[arg(value_enum)]
        kind: SchemaKind,
    },
    /// Speak the Model Context Protocol over stdio: seven tools on the configuration's
    /// workspaces, submit_handoff, write_checkpoint, wait_for_decision, get_handoff, search,
    /// lock_file and unlock_file. Run it as the agent's user: one who can read the daemon's
    /// data_dir (its keys) takes no decision (BATON_MCP_AS_DAEMON_USER=1 to go on knowingly).
    /// search asks the daemon at BATON_URL with the agent's BATON_TOKEN.
    Mcp {
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// Serve only the workspaces whose name matches GLOB (repeat for more); others are
        /// answered as if they did not exist, as an agent token's scope is. Default: all
        #[arg(long = "workspace", value_name = "GLOB")]
        workspaces: Vec<String>,
        /// With no key to check decisions with (no BATON_KEY or BATON_URL), take
        /// decision.json as written, unchecked, and say so (`verified: false`): anyone who can
        /// write a workspace can write it (also BATON_UNCHECKED=1). Without it and without a
        /// key, wait_for_decision, get_handoff and submit_handoff's tasks refuse
        #[arg(long)]
        unchecked: bool,
    },
    /// Write every decided handoff as one JSON line to standard output (for fine-tuning and
    /// offline evaluation); read from data_dir, so it runs with or without a daemon.
    Export {
        /// Only decisions made since TIME: RFC 3339 (2026-11-01T00:00:00Z), a date
        /// (2026-11-01, UTC), or an age (30m, 24h, 7d)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only workspaces whose name matches GLOB (e.g. builds-*)
        #[arg(long, value_name = "GLOB")]
        workspace: Option<String>,
        /// Canaries too (known-bad examples filed into queues), marked "canary": true
        #[arg(long)]
        canaries: bool,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Several daemons over one share ([cluster] in the configuration): `status` prints the
    /// nodes, how many workspaces each serves, and the leases nobody holds.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print the public keys decisions are signed with (`<key_id> <hex>` a line, rotated keys
    /// too), for `baton verify --key`; with --rotate, make a new signing key first (used from
    /// the daemon's next start; old receipts stay verifiable); with --revoke KEY_ID, stop
    /// publishing a key no longer signed with (a leaked one): what it signed stops verifying
    /// wherever the new list is used. Run as the daemon's user.
    Keys {
        #[arg(long, conflicts_with = "revoke")]
        rotate: bool,
        /// A key id as `baton keys` prints it (ed25519:...)
        #[arg(long, value_name = "KEY_ID")]
        revoke: Option<String>,
        /// Configuration file [default: ./baton.toml, else the embedded default]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check DIR/decision.json: signed whole by a trusted key, unedited, made in this workspace
    /// about the handoff in place, an outcome accepted (approved unless --outcome names
    /// others), still valid, every artifact and every file of approved/ with the bytes
    /// decided, and every file of approved/ approved by a person (unless --approved-by names
    /// others). Exit 0 only then; 1 with the reasons otherwise. The trusted keys must be named:
    /// --key FILE (lines of `baton keys`), --url (a daemon's public keys) or --config FILE.
    Verify {
        /// The workspace folder whose decision.json to check
        dir: PathBuf,
        /// Judge validity at this time (RFC 3339, offsets honoured) instead of now
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// The outcomes to accept, comma-separated [default: approved]
        #[arg(long, value_name = "OUTCOMES", value_delimiter = ',')]
        outcome: Vec<String>,
        /// Who may have approved each file of approved/, comma-separated: human, policy (a
        /// route's auto_approve_if), grant (a reviewer's scoped grant), unknown (promoted
        /// before baton recorded it) [default: human]
        #[arg(long, value_name = "KINDS", value_delimiter = ',')]
        approved_by: Vec<String>,
        #[command(flatten)]
        trust: TrustArgs,
    },
    /// Write an evidence pack of a period (-o FILE): each workspace's audit lines with their
    /// chain, every decision with its receipt, the configuration's hash, a Merkle root, all
    /// signed by the daemon's key (run as the daemon's user). `evidence verify FILE` checks one.
    #[command(args_conflicts_with_subcommands = true)]
    Evidence {
        #[command(subcommand)]
        check: Option<EvidenceCommand>,
        /// From this time: RFC 3339, a date (UTC), or an age (30m, 24h, 7d) [default: the start]
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Up to this time, same forms [default: now]
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only workspaces whose name matches this glob
        #[arg(long, value_name = "GLOB")]
        workspace: Option<String>,
        /// The pack to write
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Configuration file [default: ./baton.toml, else the embedded default]
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Route policies: `policy replay FILE [--since AGE]` evaluates a candidate
    /// configuration's policies, and the grants kept, against the handoffs received (nothing
    /// is written).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Agent-side hooks: `hook claude-code` is a Claude Code PreToolUse hook that stops the
    /// tool calls `[hooks.claude_code]` rules match for a person's decision.
    Hook {
        #[command(subcommand)]
        command: HookCommand,
    },
    /// Print an argon2id hash of a password (read from standard input when it is not a terminal).
    HashPassword,
    /// Check an installation and say what to fix: the configuration, data_dir (owner-only,
    /// writable), the workspaces, the port (free, or a baton answering /healthz), the
    /// notification URLs, the open-files and inotify limits, the clock. One line per finding:
    /// what, where, and the fix. Exit 0 when nothing would stop the daemon, 1 otherwise.
    Doctor {
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Write a consistent copy of data_dir (records, anchors, keys, outbox, sessions; not the
    /// search index, which is rebuilt) as a tar archive. Safe while the daemon runs: each
    /// folder is copied as it was at one moment. Run as the daemon's user.
    Backup {
        /// The archive to write (made owner-only; refused if it exists)
        #[arg(short = 'o', long, value_name = "FILE")]
        output: PathBuf,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Check every workspace's store in data_dir against its manifests and rebuild each
    /// damaged file from a source the store can prove (bytes with the sha256 it committed:
    /// the records' snapshot, the published copy), keeping the damaged one as evidence; say
    /// what cannot be rebuilt and what to do. Stop the daemon first; start it afterwards.
    /// Exit 0 when nothing is left damaged, 1 otherwise.
    Repair {
        /// Only say what is damaged and what would be rebuilt from where; change nothing
        /// (runs beside the daemon)
        #[arg(long)]
        dry_run: bool,
        /// Serve a workspace whose whole store in data_dir is gone afresh, without its
        /// records (decisions, approvals, claims): its published copies are moved aside and an
        /// empty store is made. Only where restoring data_dir from a backup is not possible
        #[arg(long, value_name = "WORKSPACE")]
        afresh: Option<String>,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Put a `baton backup` archive in place as data_dir, which must be missing or empty
    /// (stop the daemon and move the old one aside first). Run as the daemon's user.
    Restore {
        /// The archive `baton backup -o` wrote
        file: PathBuf,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Print a shell completion script for this command line (bash, zsh, fish, elvish,
    /// powershell), e.g. `baton completions bash > /etc/bash_completion.d/baton`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of `baton`, or with --dir write one per command there
    /// (baton.1, baton-serve.1, ...).
    Man {
        /// Write every page into this folder instead
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// A contract document, as named on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub enum DocKind {
    Handoff,
    Checkpoint,
    Decision,
}

/// What `baton schema` prints the JSON Schema of.
#[derive(Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Handoff,
    Checkpoint,
    Decision,
    /// One line of `baton export`
    Export,
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

/// Which public keys to trust, for `verify` and `evidence verify`.
#[derive(clap::Args)]
pub struct TrustArgs {
    /// A file of trusted public keys, as `baton keys` prints them
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// A daemon whose keys to trust (its public /api/v1/keys)
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    url: Option<String>,
    /// Configuration file, for its data_dir's keys
    #[arg(long, conflicts_with_all = ["key", "url"])]
    config: Option<PathBuf>,
}

impl TrustArgs {
    fn trust(&self) -> receipts::Trust<'_> {
        receipts::Trust {
            key_file: self.key.as_deref(),
            url: self.url.as_deref(),
            config: self.config.as_deref(),
        }
    }
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// The nodes (live or not, leases held, last seen) and the schema version. Exit 1 when a
    /// lease is expired and not taken over, or no node is live.
    Status {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        /// Configuration file [default: ./baton.toml, else the embedded default]
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum EvidenceCommand {
    /// Check a pack offline: the manifest's signature by a trusted key, the Merkle root, every
    /// log slice's chain, every decision's receipt and its handoff.decided event. Exit 0 only
    /// if all hold; 1 naming the first that does not.
    Verify {
        /// The pack
        file: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Print, per route, what the candidate's policy would have done with every decided
    /// revision (a revision sent back and replaced included): would auto-approve / leave to
    /// people, against approved, rejected, changes_requested; every one it would have approved
    /// that a person did not; and each it errs on. Then the grants: for every revision
    /// received, the grant that would have approved it (each as it stood when the revision
    /// arrived: time window, revocation, uses so far, scope, the candidate's route limits) or
    /// why none would, beside what happened to it. Exit 1 when the policy errs on any (or the
    /// candidate does not load).
    Replay {
        /// The candidate configuration (its data_dir and workspaces are read)
        file: PathBuf,
        /// Only decisions (and, for grants, revisions received) since: RFC 3339, a date, or an
        /// age (30d)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// The grants to replay [default: the candidate's data_dir/grants.json]
        #[arg(long, value_name = "FILE")]
        grants: Option<PathBuf>,
        /// Print one JSON object (`policies`, `grants`) instead of the tables
        #[arg(long)]
        json: bool,
        /// Replay the policies over canaries too (known-bad examples filed into queues; no
        /// agent's work, so left out by default), each line marked `canary`
        #[arg(long)]
        include_canaries: bool,
    },
}

#[derive(Subcommand)]
pub enum HookCommand {
    /// Read a Claude Code PreToolUse hook input on standard input; for a tool call a
    /// `[[hooks.claude_code.rules]]` entry matches, submit a handoff showing the tool and its
    /// arguments, wait for a decision signed by the daemon's key, and print the hook output:
    /// allow (approved), deny with the reviewer's words (rejected, changes requested,
    /// withdrawn, expired, invalid), or `on_timeout` / `on_error` (ask unless set; never
    /// allow). A call no rule matches passes through: nothing printed. Always exit 0.
    ClaudeCode {
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of DIR/.baton/events.jsonl (and its end, against the daemon's anchor).
    Verify {
        /// The workspace folder whose .baton/events.jsonl to check
        dir: PathBuf,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Acknowledge tampering that `audit verify` reports, after review (recorded in data_dir).
    Ack {
        /// The workspace folder whose reported tampering to acknowledge
        dir: PathBuf,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// Who acknowledges (default: $USER)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

pub fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { config } => serve::serve(config.as_deref()),
        Command::Init { dir, config } => admin::init(&dir, config.as_deref()),
        Command::Validate { file, kind } => agent::validate(&file, kind.map(Into::into)),
        Command::Submit { dir, file, json } => submit::submit(&dir, &file, json),
        Command::Wait {
            dir,
            handoff,
            submitted,
            timeout,
            key,
            unchecked,
        } => {
            daemon_user::warn_before_wait(&dir, key.as_deref(), unchecked);
            let about = agent::About {
                handoff: handoff.as_deref(),
                submitted: submitted.as_deref(),
            };
            agent::wait(&dir, about, timeout, key.as_deref(), unchecked)
        }
        Command::Withdraw { key, reason } => withdraw::withdraw(&key, reason.as_deref()),
        Command::Lock {
            dir,
            path,
            owner,
            ttl,
            purpose,
        } => locks::lock(&dir, &path, &owner, ttl, purpose),
        Command::Unlock {
            dir,
            path,
            owner,
            token,
        } => locks::unlock(&dir, &path, &owner, token),
        Command::Locks { dir, json } => locks::list(&dir, json),
        Command::Schema { kind } => admin::schema(kind),
        Command::Mcp {
            config,
            workspaces,
            unchecked,
        } => mcp::mcp(config.as_deref(), &workspaces, unchecked),
        Command::Export {
            since,
            workspace,
            canaries,
            config,
        } => export::export(
            since.as_deref(),
            workspace.as_deref(),
            canaries,
            config.as_deref(),
        ),
        Command::Search {
            query,
            config,
            json,
            workspace,
            kind,
            limit,
            offset,
        } => search::search(search::Options {
            config: config.as_deref(),
            json,
            query: query.join(" "),
            workspace,
            kind,
            limit: limit.into(),
            offset,
        }),
        Command::Reindex { config } => search::reindex(config.as_deref()),
        Command::Audit {
            command: AuditCommand::Verify { dir, config },
        } => admin::audit_verify(&dir, config.as_deref()),
        Command::Audit {
            command: AuditCommand::Ack { dir, config, by },
        } => admin::audit_ack(&dir, config.as_deref(), by),
        Command::Hook {
            command: HookCommand::ClaudeCode { config },
        } => claude_hook::claude_code(config.as_deref()),
        Command::HashPassword => admin::hash_password(),
        Command::Doctor { config } => doctor::doctor(config.as_deref()),
        Command::Backup { output, config } => backup::backup(&output, config.as_deref()),
        Command::Restore { file, config } => restore::restore(&file, config.as_deref()),
        Command::Repair {
            dry_run,
            afresh,
            config,
        } => repair::repair(dry_run, afresh.as_deref(), config.as_deref()),
        Command::Completions { shell } => manuals::completions(shell),
        Command::Man { dir } => manuals::man(dir.as_deref()),
        Command::Policy {
            command:
                PolicyCommand::Replay {
                    file,
                    since,
                    grants,
                    json,
                    include_canaries,
                },
        } => policy::replay(
            &file,
            since.as_deref(),
            grants.as_deref(),
            json,
            include_canaries,
        ),
        Command::Evidence {
            check: Some(EvidenceCommand::Verify { file, trust }),
            ..
        } => evidence::verify(&file, trust.trust()),
        Command::Evidence {
            check: None,
            since,
            until,
            workspace,
            output,
            config,
        } => {
            let output =
                output.ok_or_else(|| anyhow::anyhow!("-o FILE: where to write the pack"))?;
            evidence::make(evidence::Request {
                since: since.as_deref(),
                until: until.as_deref(),
                workspace: workspace.as_deref(),
                output: &output,
                config: config.as_deref(),
            })
        }
        Command::Cluster {
            command: ClusterCommand::Status { json, config },
        } => cluster::status(config.as_deref(), json),
        Command::Keys {
            rotate,
            revoke,
            config,
        } => receipts::keys(config.as_deref(), rotate, revoke.as_deref()),
        Command::Verify {
            dir,
            at,
            outcome,
            approved_by,
            trust,
        } => receipts::verify(&dir, trust.trust(), at.as_deref(), &outcome, &approved_by),
    }
}
