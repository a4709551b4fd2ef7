//! Store files as a crash leaves them: the tests that act a crash out write a record's file
//! as the store commits it, its folder's manifest (`.baton-manifest`: each file's sha256,
//! checksummed) changed with it. A file written without its manifest is damage, which the
//! daemon refuses to read as state (tests/store_damage.rs).

use baton::contract::validate::sha256_hex;
use serde_json::{json, Value};
use std::path::Path;

const MANIFEST: &str = ".baton-manifest";
const MAGIC: &str = "baton-manifest 1";

/// Puts `bytes` as `file` of the record folder `folder` (`None`: removes it) the way a
/// committed change of the store leaves it.
pub fn commit_in_store(folder: &Path, file: &str, bytes: Option<&[u8]>) {
    std::fs::create_dir_all(folder).unwrap();
    let mut manifest: Value = match std::fs::read(folder.join(MANIFEST)) {
        Ok(raw) => {
            let end = raw.iter().position(|&c| c == b'\n').unwrap();
            serde_json::from_slice(&raw[end + 1..]).unwrap()
        }
        Err(_) => {
            listed(folder);
            json!({ "files": {} })
        }
    };
    let files = manifest["files"].as_object_mut().unwrap();
    match bytes {
        Some(bytes) => {
            // Renamed into place, as the store writes (its folder's fingerprint moves).
            let tmp = folder.join(".commit-tmp");
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, folder.join(file)).unwrap();
            files.insert(file.to_string(), json!(sha256_hex(bytes)));
        }
        None => {
            let _ = std::fs::remove_file(folder.join(file));
            files.remove(file);
        }
    }
    manifest.as_object_mut().unwrap().remove("pending");
    let mut rest = serde_json::to_vec(&manifest).unwrap();
    rest.push(b'\n');
    let mut out = format!("{MAGIC} {}\n", sha256_hex(&rest)).into_bytes();
    out.extend_from_slice(&rest);
    let tmp = folder.join(".commit-tmp");
    std::fs::write(&tmp, out).unwrap();
    std::fs::rename(&tmp, folder.join(MANIFEST)).unwrap();
}

/// A new record folder's line in its store's ledger (`record-folders`: its name and the first
/// 16 hex digits of the name's sha256), appended as the store does before the folder's first
/// commit; a folder committed but not listed is damage. Stores without a ledger are left so.
fn listed(folder: &Path) {
    let store = folder.parent().and_then(Path::parent).unwrap();
    let ledger = store.join("record-folders");
    if !ledger.exists() {
        return;
    }
    let name = folder.file_name().unwrap().to_str().unwrap();
    let line = format!("{name} {}\n", &sha256_hex(name.as_bytes())[..16]);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(ledger)
        .unwrap();
    std::io::Write::write_all(&mut file, line.as_bytes()).unwrap();
}
