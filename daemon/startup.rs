//! What a start found wrong, typed: fatal (the daemon does not start) or a warning (it starts
//! without what is named). Each problem says what went wrong, where, and what to do;
//! `Display` prints it as one line, as the log has always shown it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Whether the daemon can start with the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The start is refused.
    Fatal,
    /// The daemon starts without what the problem names.
    Warning,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StartupProblem {
    /// The configured address cannot be listened on.
    #[error("{config}: listen: cannot listen on {addr}: {why} (change `listen`)")]
    Listen {
        config: String,
        addr: SocketAddr,
        why: String,
    },
    /// A workspace under a configured root could not be opened; it is not served.
    #[error("{}: {why}", path.display())]
    WorkspaceUnreadable { path: PathBuf, why: String },
    /// Two workspaces have one name; the second found is not served.
    #[error("workspace {} is skipped: its name \"{name}\" is already used by {}", skipped.display(), kept.display())]
    WorkspaceNameTaken {
        skipped: PathBuf,
        name: String,
        kept: PathBuf,
    },
    /// A configured entry of `workspaces` holds no workspace yet.
    #[error("{config}: {key} holds no workspace yet (no .baton/ in it or its sub-folders); make one with `baton init`, or fix the entry")]
    EmptyEntry { config: String, key: String },
    /// A file or folder in data_dir others could reach, narrowed.
    #[error("{config}: data_dir: {change}")]
    DataDirNarrowed { config: String, change: String },
    /// The search index could not be opened: search is off, the rest runs.
    #[error("search is off: {why}")]
    SearchOff { why: String },
    /// A stored delivery could not be read or trusted (the store names it): listed dead, not sent.
    #[error("{0}")]
    DeliveryUnreadable(String),
    /// A pending delivery to an endpoint no longer configured: made dead.
    #[error("delivery {id} to {channel} is dead: that endpoint is no longer configured")]
    DeliveryOrphaned { id: String, channel: String },
}

impl StartupProblem {
    pub fn severity(&self) -> Severity {
        match self {
            StartupProblem::Listen { .. } => Severity::Fatal,
            _ => Severity::Warning,
        }
    }

    /// Where: the file, folder or key at fault.
    pub fn place(&self) -> String {
        match self {
            StartupProblem::Listen { config, .. } => format!("{config}: listen"),
            StartupProblem::WorkspaceUnreadable { path, .. } => path.display().to_string(),
            StartupProblem::WorkspaceNameTaken { skipped, .. } => skipped.display().to_string(),
            StartupProblem::EmptyEntry { config, key } => format!("{config}: {key}"),
            StartupProblem::DataDirNarrowed { config, .. } => format!("{config}: data_dir"),
            StartupProblem::SearchOff { .. } => "the search index in data_dir".to_string(),
            StartupProblem::DeliveryUnreadable(_) => "the delivery spool".to_string(),
            StartupProblem::DeliveryOrphaned { id, .. } => format!("delivery {id}"),
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> &'static str {
        match self {
            StartupProblem::Listen { .. } => "change `listen`, or stop what uses the address",
            StartupProblem::WorkspaceUnreadable { .. } => {
                "make the folder readable by the daemon's user, or remove its .baton/"
            }
            StartupProblem::WorkspaceNameTaken { .. } => "rename one of the two folders",
            StartupProblem::EmptyEntry { .. } => "make one with `baton init`, or fix the entry",
            StartupProblem::DataDirNarrowed { .. } => "nothing: it is owner-only again",
            StartupProblem::SearchOff { .. } => "see why; `baton reindex` rebuilds the index",
            StartupProblem::DeliveryUnreadable(_) => {
                "nothing to mend: it is listed dead and never sent (the file is in \
                 data_dir/outbox/damaged/); check the disk, and tell the receiver by hand if it \
                 still needs the event (in the workspace's audit log)"
            }
            StartupProblem::DeliveryOrphaned { .. } => {
                "configure the endpoint again and retry the delivery, or leave it dead"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refused_listen_is_fatal_and_each_names_where() {
        let listen = StartupProblem::Listen {
            config: "baton.toml".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            why: "in use".into(),
        };
        assert_eq!(listen.severity(), Severity::Fatal);
        assert_eq!(
            listen.to_string(),
            "baton.toml: listen: cannot listen on 127.0.0.1:1: in use (change `listen`)"
        );
        let off = StartupProblem::SearchOff {
            why: "locked".into(),
        };
        assert_eq!(off.severity(), Severity::Warning);
        assert_eq!(off.to_string(), "search is off: locked");
        assert!(!off.place().is_empty() && !off.fix().is_empty());
    }
}
