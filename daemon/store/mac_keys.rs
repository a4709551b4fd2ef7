//! The MAC keys of what the daemon hands out and must recognise when it comes back, kept as
//! documents so that every node of a cluster reads the same.

use crate::documents::Documents;
use crate::private::MacKey;
use std::path::Path;

/// The MAC keys of what the daemon hands out to chat apps and must recognise when it comes
/// back (Mattermost button contexts, Slack form bindings, link confirmations), kept as
/// documents (`crate::documents`): one daemon's are its data_dir files as before (64
/// hex digits, owner-only, at the same paths), a cluster's are rows every node reads, so what
/// one node sealed opens on every other (a button posted by one node is taken by whichever
/// node a click reaches, before and after a lease moves).
///
/// A key is made once, under its document's change lock: two nodes (or two threads) asking
/// for a key never made both see none and make two different ones; the second finds the
/// first's. A key is read at each use, as before (a key deleted to make a new one, or mended,
/// holds at the next use; in a cluster one primary-key `SELECT`). A document that is not a key
/// is an error naming where it is and what a new key would refuse; it is never replaced by a
/// new key.
pub struct MacKeys {
    documents: std::sync::Arc<dyn Documents>,
}

impl MacKeys {
    pub fn new(documents: std::sync::Arc<dyn Documents>) -> MacKeys {
        MacKeys { documents }
    }

    /// One daemon's keys: files of `data_dir`.
    pub fn in_data_dir(data_dir: &Path) -> MacKeys {
        MacKeys::new(std::sync::Arc::new(crate::documents::InDataDir::new(
            data_dir,
        )))
    }

    /// The key kept as document `name` (a path under data_dir for one daemon), made on first
    /// use. `lost`: what stops working if it is deleted to make a new one.
    pub fn get(&self, name: &str, lost: &str) -> std::io::Result<MacKey> {
        use std::io::{Error, ErrorKind};
        let place = self.documents.place(name);
        let parse = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| hex::decode(t.trim()).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidData,
                        format!(
                            "{place}: not a 64-hex-digit key; delete it to make a new one ({lost})"
                        ),
                    )
                })
        };
        let key = match self.documents.read(name)? {
            Some(bytes) => parse(&bytes)?,
            None => {
                let mut made = None;
                self.documents.change(name, &mut |now| match now {
                    // Made meanwhile (another node, another thread): theirs is the key.
                    Some(bytes) => {
                        made = Some(parse(bytes)?);
                        Ok(None)
                    }
                    None => {
                        let key: [u8; 32] = rand::random();
                        made = Some(key);
                        Ok(Some(hex::encode(key).into_bytes()))
                    }
                })?;
                made.ok_or_else(|| Error::other(format!("{place}: no key was read or made")))?
            }
        };
        Ok(MacKey::from_bytes(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_shared_key_is_made_once_kept_as_hex_and_a_damaged_one_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MacKeys::in_data_dir(dir.path());
        let k = keys.get("chat/k", "x").unwrap();
        let file = dir.path().join("chat/k");
        let text = std::fs::read_to_string(&file).unwrap();
        let kept = <[u8; 32]>::try_from(hex::decode(text.trim()).unwrap()).unwrap();
        assert_eq!(MacKey::from_bytes(kept).seal(b"d", &1), k.seal(b"d", &1));
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        // Another reader of the same documents (another node) reads the same key.
        let other = MacKeys::in_data_dir(dir.path()).get("chat/k", "x").unwrap();
        assert_eq!(other.seal(b"d", &1), k.seal(b"d", &1));
        std::fs::write(dir.path().join("chat/bad"), b"not a key").unwrap();
        let err = MacKeys::in_data_dir(dir.path())
            .get("chat/bad", "forms refused")
            .unwrap_err();
        assert!(
            err.to_string().contains("chat/bad: not a 64-hex-digit key"),
            "{err}"
        );
        assert!(err.to_string().contains("forms refused"), "{err}");
        assert_eq!(
            std::fs::read(dir.path().join("chat/bad")).unwrap(),
            b"not a key"
        );
    }
}
