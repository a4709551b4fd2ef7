//! The record of passkeys registered and removed, `data_dir/passkeys/changes.jsonl`: one JSON
//! line per change, appended and synced before the change is answered, so who added or took
//! away a step-up key, and when, survives a restart. Kept apart from the workspaces' audit
//! logs (a passkey is a reviewer's, not a workspace's) and never where agents can write.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Journal {
    path: PathBuf,
    /// One writer at a time, so lines never interleave.
    lock: Mutex<()>,
}

impl Journal {
    pub fn new(data_dir: &Path) -> Journal {
        Journal {
            path: data_dir.join("passkeys").join("changes.jsonl"),
            lock: Mutex::new(()),
        }
    }

    /// Appends `{at, type, reviewer, credential, label?, proof}` and syncs it.
    pub fn record(
        &self,
        kind: &str,
        reviewer: &str,
        credential: &str,
        label: Option<&str>,
        proof: &str,
    ) -> io::Result<()> {
        let mut line = serde_json::json!({
            "at": crate::clock::now_rfc3339(),
            "type": kind,
            "reviewer": reviewer,
            "credential": credential,
            "proof": proof,
        });
        if let Some(label) = label {
            line["label"] = label.into();
        }
        let mut text = line.to_string();
        text.push('\n');
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    }
}
