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
        Err(_) => json!({ "files": {} }),
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
