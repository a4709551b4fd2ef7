//! Who proved to send a handoff: the agent whose token uploaded its exact content through the
//! API (`PUT .../files/handoff`, whose `from_agent` must name that token's agent). A file
//! written on the share proves nothing about its writer, whatever its `from_agent` says.
//!
//! Each such upload is recorded, before the file is written into the workspace, as a line of
//! `data_dir/policy/uploads.jsonl` (owner-only, out of the agents' reach): the workspace, the
//! handoff's content digest (canonical JSON, as `meta.digest`) and the agent. A revision whose
//! digest is there was sent by that agent; a policy reads it as `sender`, at receipt, in
//! shadow mode and in `baton policy replay` alike. Lost lines (a crash before they reach the
//! disk) only make a sender unproven, never the reverse.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Serialize, Deserialize)]
struct Line {
    workspace: String,
    digest: String,
    agent: String,
    at: String,
}

fn file(data_dir: &Path) -> PathBuf {
    data_dir.join("policy").join("uploads.jsonl")
}

/// What has been read of each data_dir's file: how far, and (workspace, digest) -> agent.
type Read_ = HashMap<PathBuf, (u64, HashMap<(String, String), String>)>;
static READ: Mutex<Option<Read_>> = Mutex::new(None);

/// Records that `agent`'s token uploaded a handoff with content `digest` into `workspace`.
pub fn record(data_dir: &Path, workspace: &str, digest: &str, agent: &str) -> std::io::Result<()> {
    let path = file(data_dir);
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let line = Line {
        workspace: workspace.to_string(),
        digest: digest.to_string(),
        agent: agent.to_string(),
        at: crate::clock::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let mut text = serde_json::to_vec(&line)?;
    text.push(b'\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(&text)
}

/// The agent proven to have sent the content `digest` into `workspace`, if any.
pub fn sender(data_dir: &Path, workspace: &str, digest: &str) -> Option<String> {
    let path = file(data_dir);
    let mut guard = READ.lock().unwrap_or_else(|e| e.into_inner());
    let all = guard.get_or_insert_with(HashMap::new);
    let (offset, known) = all.entry(path.clone()).or_default();
    catch_up(&path, offset, known);
    known
        .get(&(workspace.to_string(), digest.to_string()))
        .cloned()
}

/// Reads the lines appended since `offset` (whole lines only).
fn catch_up(path: &Path, offset: &mut u64, known: &mut HashMap<(String, String), String>) {
    let Ok(mut f) = std::fs::File::open(path) else {
        return;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < *offset {
        // Replaced or cut: read it again from the start.
        *offset = 0;
        known.clear();
    }
    if len == *offset || f.seek(SeekFrom::Start(*offset)).is_err() {
        return;
    }
    let mut bytes = Vec::new();
    if f.read_to_end(&mut bytes).is_err() {
        return;
    }
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    for line in bytes[..whole].split(|b| *b == b'\n') {
        if let Ok(l) = serde_json::from_slice::<Line>(line) {
            known.insert((l.workspace, l.digest), l.agent);
        }
    }
    *offset += whole as u64;
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_upload_proves_its_sender_only_for_its_content_and_workspace() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(super::sender(dir.path(), "alpha", "d1"), None);
        super::record(dir.path(), "alpha", "d1", "release-bot").unwrap();
        assert_eq!(
            super::sender(dir.path(), "alpha", "d1").as_deref(),
            Some("release-bot")
        );
        assert_eq!(super::sender(dir.path(), "alpha", "d2"), None);
        assert_eq!(super::sender(dir.path(), "beta", "d1"), None);
    }
}
