//! data_dir is the daemon's alone: its records, the delivery spool (webhook bodies), sessions,
//! anchors and the search index say what every workspace holds, so an agent of one workspace
//! must not read them as a local user. Everything in it is owner-only (folders 0700, files
//! 0600) whatever the operator's umask:
//!
//! - `restrict_umask` makes every file the daemon creates owner-only unless the writer sets a
//!   mode itself. Files inside workspaces that agents read (decision.json, the published
//!   `.baton/` copies, approved/) do: `workspace::confined` and `write_atomic` with
//!   `Kind::Workspace` set their modes explicitly, so the umask only narrows data_dir. Third
//!   parties that write there (tantivy's segments) are covered by the umask alone, which is
//!   why a umask and not a mode at every write site.
//! - `repair` walks data_dir at start and narrows anything looser (a data_dir made by an older
//!   baton, or copied back from a backup), with a warning naming what it changed; the daemon
//!   narrows data_dir itself first and walks the rest once it is ready.
//! - `readable` turns the permission error another user's `baton search` or `baton export`
//!   meets into one line that says what to do.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Writes a new owner-only file (a key, a used link's mark), synced; fails if it exists, so
/// two processes making the same key never both write it.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The 32-byte secret kept as hex at `path` (an HMAC key of data_dir's), made on first use,
/// owner-only. A file that is not 64 hex digits is an error naming it and `lost`: what stops
/// working when it is deleted to make a new one.
pub fn key_file(path: &Path, lost: &str) -> std::io::Result<[u8; 32]> {
    use std::io::{Error, ErrorKind};
    let parse = |text: &str| {
        hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidData,
                    format!(
                        "{}: not a 64-hex-digit key; delete it to make a new one ({lost})",
                        path.display()
                    ),
                )
            })
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let key: [u8; 32] = rand::random();
            match write_new(path, hex::encode(key).as_bytes()) {
                Ok(()) => Ok(key),
                // Another thread made it first: theirs is the key.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    parse(&std::fs::read_to_string(path)?)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// An HMAC-SHA256 key of data_dir's (`key_file`) sealing what the daemon hands out and must
/// recognise when it comes back (chat button contexts, form metadata, link tokens). A MAC
/// covers a domain (what the value is for, so one sealed for one use never opens for another)
/// and the value's JSON.
#[derive(Clone)]
pub struct MacKey([u8; 32]);

/// Never prints the key.
impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

impl MacKey {
    /// The key of these bytes (as kept, see `store::mac_keys`).
    pub fn from_bytes(key: [u8; 32]) -> MacKey {
        MacKey(key)
    }

    fn mac<T: serde::Serialize>(&self, domain: &[u8], value: &T) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(domain);
        mac.update(&serde_json::to_vec(value).expect("a sealed value serializes"));
        mac
    }

    /// A fresh HMAC-SHA256 under this key, for tokens whose format predates `seal` (the mail
    /// links' `l1.` tokens MAC their own domain and bytes).
    pub fn hmac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key")
    }

    /// The MAC of `value` for `domain`, in hex.
    pub fn seal<T: serde::Serialize>(&self, domain: &[u8], value: &T) -> String {
        use hmac::Mac;
        hex::encode(self.mac(domain, value).finalize().into_bytes())
    }

    /// Whether `mac` (hex) is this key's for `value` and `domain`, compared in constant time.
    pub fn verify<T: serde::Serialize>(&self, domain: &[u8], value: &T, mac: &str) -> bool {
        use hmac::Mac;
        hex::decode(mac).is_ok_and(|given| self.mac(domain, value).verify_slice(&given).is_ok())
    }
}

/// Sets the process umask to 0o077. Call before the first thread starts writing (the umask is
/// per process, so every thread's later creations are owner-only).
pub fn restrict_umask() {
    // SAFETY: umask only swaps an integer in the process; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Narrows every folder and file under `data_dir` (itself included) that others may read or
/// write; one line per change, for the caller to warn with. Symlinks are not followed.
pub fn repair(data_dir: &Path) -> Vec<String> {
    let mut changed = Vec::new();
    for entry in walkdir::WalkDir::new(data_dir).follow_links(false) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                changed.push(format!("cannot check {}: {e}", data_dir.display()));
                continue;
            }
        };
        if let Some(line) = narrow(entry.path(), entry.file_type()) {
            changed.push(line);
        }
    }
    changed
}

/// `repair` at start without holding the start up: data_dir itself is narrowed first (so
/// another user can reach nothing inside it, whatever the modes there), then the walk of
/// everything in it runs on a thread of its own (at 100,000 records, half a million stats),
/// each change passed to `report`. The walk begins when `begin` returns: the daemon lets it
/// begin once it is ready, so that its stats do not compete with the start's own reads for
/// the same cores and disk (nothing inside is reachable by others meanwhile: data_dir is
/// owner-only from the first moment).
pub fn repair_in_background(
    data_dir: &Path,
    report: impl Fn(String) + Send + 'static,
    begin: impl FnOnce() + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    if let Ok(meta) = std::fs::symlink_metadata(data_dir) {
        if let Some(line) = narrow(data_dir, meta.file_type()) {
            report(line);
        }
    }
    let data_dir = data_dir.to_path_buf();
    std::thread::Builder::new()
        .name("baton-repair".into())
        .spawn(move || {
            begin();
            for line in repair(&data_dir) {
                report(line);
            }
        })
}

/// Narrows one entry; what was done, or None when it was owner-only already.
fn narrow(path: &Path, kind: std::fs::FileType) -> Option<String> {
    let want = if kind.is_dir() {
        DIR_MODE
    } else if kind.is_file() {
        FILE_MODE
    } else {
        return None;
    };
    let have = std::fs::symlink_metadata(path).ok()?.mode() & 0o7777;
    if have & 0o077 == 0 {
        return None;
    }
    let why = match std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)) {
        Ok(()) => format!("set to {want:o}"),
        Err(e) => format!("cannot set to {want:o}: {e}"),
    };
    Some(format!(
        "{}: mode {have:o} let other users read the daemon's records; {why}",
        path.display()
    ))
}

/// Checks that this user can read `data_dir`, for commands that read it directly. Another
/// user meets a folder that is owner-only by design: say so, instead of an I/O error from
/// deep in the store or the index.
pub fn readable(data_dir: &Path) -> Result<(), String> {
    match std::fs::read_dir(data_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let owner = std::fs::metadata(data_dir)
                .map(|m| format!(" (owner uid {})", m.uid()))
                .unwrap_or_default();
            Err(format!(
                "permission denied: data_dir {} is readable only by the daemon's user{owner}; \
                 run as the daemon's user (e.g. sudo -u <that user> baton ...)",
                data_dir.display()
            ))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repair_narrows_folders_and_files_and_reports_each() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/rev-1.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{}").unwrap();
        let open = |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        open(&file, 0o644).unwrap();
        open(&dir.path().join("sub"), 0o755).unwrap();
        open(dir.path(), 0o700).unwrap();
        let changed = repair(dir.path());
        assert_eq!(changed.len(), 2, "{changed:?}");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.path().join("sub")), 0o700);
        assert!(repair(dir.path()).is_empty(), "a second walk finds nothing");
    }
}
