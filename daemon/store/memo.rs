//! A workspace's memos in its store: small JSON files beside the record folders that are not
//! records themselves (the approved manifest, the owner, what the daemon logged of the lock
//! table, the announced checkpoints, the copies' fingerprints). They carry no folder manifest,
//! so a memo that guards something (approved work, ownership, fencing tokens) is sealed: a
//! first line naming the format and the sha256 of the JSON after it. A memo that fails its
//! seal, or is not JSON at all (truncated, emptied, garbage), is `Damaged`, never read as
//! absent: the caller decides what that means (rebuild it from the records, or fail safe) and
//! says so (see `app::review::memo_damage`).
//!
//! A memo written before seals existed (plain JSON) is read as it is; the next write seals it.
//! Caches (the checkpoints and copies' memos) stay plain JSON: damage there costs a repeat
//! announcement or a read, never a decision, and a parse failure is still told.

use super::Store;
use crate::contract::validate::sha256_hex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io;
use std::path::Path;

/// The first line's start: the format, then the sha256 of what follows the line.
const MAGIC: &str = "baton-memo 1 ";

/// A memo as read.
#[derive(Debug)]
pub enum Memo<T> {
    /// Never written (a new workspace, or nothing to keep yet).
    Absent,
    Sound(T),
    /// There, and not what the daemon wrote: why, for people.
    Damaged(String),
}

/// `json` with its seal.
pub fn seal(json: &[u8]) -> Vec<u8> {
    let mut out = format!("{MAGIC}{}\n", sha256_hex(json)).into_bytes();
    out.extend_from_slice(json);
    out
}

/// The JSON of a memo's bytes: a sealed one checked against its digest, an unsealed one (an
/// older version's) as it is.
fn unseal(bytes: &[u8]) -> Result<&[u8], String> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_bytes()) else {
        return Ok(bytes);
    };
    let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
        return Err("its seal line is cut short (truncated)".into());
    };
    let (digest, json) = (&rest[..nl], &rest[nl + 1..]);
    if digest != sha256_hex(json).as_bytes() {
        return Err(format!(
            "its bytes do not match its seal ({} bytes now: truncated or changed)",
            bytes.len()
        ));
    }
    Ok(json)
}

/// Reads memo `rel` of `store` as a `T`. A read error other than absence is damage too: the
/// caller cannot tell what the memo holds.
pub fn read<T: DeserializeOwned>(store: &Store, rel: &Path) -> Memo<T> {
    parse(store.read(rel))
}

/// A memo from the outcome of reading its file.
pub fn parse<T: DeserializeOwned>(read: io::Result<Option<Vec<u8>>>) -> Memo<T> {
    let bytes = match read {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Memo::Absent,
        Err(e) => return Memo::Damaged(format!("cannot be read: {e}")),
    };
    if bytes.is_empty() {
        return Memo::Damaged("emptied (0 bytes)".into());
    }
    let json = match unseal(&bytes) {
        Ok(json) => json,
        Err(why) => return Memo::Damaged(why),
    };
    match serde_json::from_slice(json) {
        Ok(value) => Memo::Sound(value),
        Err(e) => Memo::Damaged(format!(
            "not the JSON the daemon wrote ({} bytes: truncated or garbage): {e}",
            bytes.len()
        )),
    }
}

/// Writes memo `rel` sealed, atomically and durably (temp file, sync, rename: the store's
/// `write`).
pub fn write<T: Serialize>(store: &Store, rel: &Path, value: &T) -> io::Result<()> {
    store.write(rel, &sealed(value)?)
}

/// `value` as a sealed memo's bytes.
pub fn sealed<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    Ok(seal(&json))
}

#[cfg(test)]
mod tests {
    use super::{seal, unseal};

    #[test]
    fn a_seal_tells_truncation_and_a_flipped_byte() {
        let sealed = seal(b"{\"owner\":\"ann\"}");
        assert_eq!(unseal(&sealed).unwrap(), b"{\"owner\":\"ann\"}");
        assert!(unseal(&sealed[..sealed.len() - 3]).is_err());
        assert!(unseal(&sealed[..20]).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 4;
        flipped[last] ^= 0x01;
        assert!(unseal(&flipped).is_err());
        assert_eq!(
            unseal(b"{\"a\":1}").unwrap(),
            b"{\"a\":1}",
            "an older, unsealed memo"
        );
    }
}
