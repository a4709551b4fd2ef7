//! Where a handoff's chat posts were made (a Slack message's channel and ts, a Mattermost
//! post's id, a `direct` entry's copies), kept as documents (`crate::store::documents`) so that
//! whichever node takes the decision updates the posts another node made: one daemon keeps
//! them as the files of data_dir they always were (`chat/NAME/`, `chat/mattermost/NAME/`,
//! `chat/mattermost/NAME/direct/`, one per handoff named by the sha256 of its key), a cluster
//! as rows of `documents` of the same names, which every node reads at each use. A place is
//! changed under its document's lock (`Places::change`): what another node kept meanwhile is
//! read before anything is saved, never written over unseen.
//!
//! A document that is empty or does not parse as what was written is damage: refused and
//! named (`PlaceError::Damaged`), never read as "not posted", and never saved over. Read as
//! "not posted", a decision's update would wait for a post that never comes, or a `direct`
//! entry post every copy again and lose the ones its decision must update; an id read from it
//! unchecked could send the update to another post (a Mattermost id goes into the URL's path).

use crate::store::documents::Documents;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

/// Why a place cannot be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{place} is damaged ({why}); it is left as it is, and no chat post of this handoff is made or updated from it. Mend it, or move it away (delete it) to post the review again: the posts it named are then not updated")]
    Damaged { place: String, why: String },
    #[error("cannot read or write {place}: {why}")]
    Io { place: String, why: String },
}

/// What a place holds, as its document's bytes.
pub trait Kept: Sized {
    /// What `bytes`, kept for handoff `key`, say; why not, when they are not what is written.
    fn parse(bytes: &[u8], key: &str) -> Result<Self, String>;
    fn bytes(&self) -> Vec<u8>;
}

/// The places of one chat entry's posts of one kind, by handoff key.
pub struct Places<T> {
    documents: Arc<dyn Documents>,
    /// The documents' folder (`chat/NAME`) and their names' extension.
    dir: String,
    ext: &'static str,
    kind: PhantomData<fn() -> T>,
}

impl<T> Clone for Places<T> {
    fn clone(&self) -> Self {
        Places {
            documents: self.documents.clone(),
            dir: self.dir.clone(),
            ext: self.ext,
            kind: PhantomData,
        }
    }
}

impl<T: Kept> Places<T> {
    pub fn new(documents: Arc<dyn Documents>, dir: String, ext: &'static str) -> Places<T> {
        Places {
            documents,
            dir,
            ext,
            kind: PhantomData,
        }
    }

    /// The document of `key`'s place (a path under data_dir for one daemon).
    pub fn name(&self, key: &str) -> String {
        use sha2::{Digest, Sha256};
        let digest = hex::encode(Sha256::digest(key));
        format!("{}/{digest}.{}", self.dir, self.ext)
    }

    /// Where `key`'s place is, in words for a person.
    pub fn place(&self, key: &str) -> String {
        self.documents.place(&self.name(key))
    }

    fn damaged(&self, key: &str, why: String) -> PlaceError {
        PlaceError::Damaged {
            place: self.place(key),
            why,
        }
    }

    fn parse(&self, bytes: &[u8], key: &str) -> Result<T, PlaceError> {
        if bytes.is_empty() {
            return Err(self.damaged(key, "it is empty".into()));
        }
        T::parse(bytes, key).map_err(|why| self.damaged(key, why))
    }

    /// Where `key` was posted: None when nothing was kept yet.
    pub fn get(&self, key: &str) -> Result<Option<T>, PlaceError> {
        let bytes = self
            .documents
            .read(&self.name(key))
            .map_err(|e| PlaceError::Io {
                place: self.place(key),
                why: e.to_string(),
            })?;
        bytes.map(|b| self.parse(&b, key)).transpose()
    }

    /// Whether a post of `key` was kept: a damaged place counts (the decision's update is
    /// then made, and each of its attempts names the damage).
    pub fn has(&self, key: &str) -> bool {
        !matches!(self.get(key), Ok(None))
    }

    /// Lets `change` see `key`'s place as kept now, under the lock every change of it takes,
    /// and saves what it answers (`None`: nothing). Returns the place as kept after. Refused,
    /// nothing saved, when the place is damaged.
    pub fn change(
        &self,
        key: &str,
        mut change: impl FnMut(Option<T>) -> Option<T> + Send,
    ) -> Result<Option<T>, PlaceError> {
        let mut after = None;
        let mut refused = None;
        let changed = self.documents.change(&self.name(key), &mut |bytes| {
            let now = match bytes.map(|b| self.parse(b, key)).transpose() {
                Ok(now) => now,
                Err(e) => {
                    let said = io::Error::new(io::ErrorKind::InvalidData, e.to_string());
                    refused = Some(e);
                    return Err(said);
                }
            };
            let now_bytes = now.as_ref().map(T::bytes);
            match change(now) {
                Some(next) => {
                    let b = next.bytes();
                    after = Some(b.clone());
                    Ok(Some(b))
                }
                None => {
                    after = now_bytes;
                    Ok(None)
                }
            }
        });
        if let Some(e) = refused {
            return Err(e);
        }
        changed.map_err(|e| PlaceError::Io {
            place: self.place(key),
            why: e.to_string(),
        })?;
        after.map(|b| self.parse(&b, key)).transpose()
    }

    /// Keeps `value` as `key`'s place, in place of the one kept (a new revision's post);
    /// refused over a damaged one.
    pub fn put(&self, key: &str, value: T) -> Result<(), PlaceError>
    where
        T: Send,
    {
        let mut value = Some(value);
        self.change(key, move |_| value.take()).map(drop)
    }
}

/// A Mattermost post's id, as it goes into a URL's path: letters, digits, `_` and `-` (a
/// Mattermost id is 26 of them), so nothing read back from a place can point elsewhere.
pub fn plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::documents::InDataDir;

    #[derive(Debug, PartialEq)]
    struct Id(String);

    impl Kept for Id {
        fn parse(bytes: &[u8], _key: &str) -> Result<Id, String> {
            let id = std::str::from_utf8(bytes)
                .map_err(|e| e.to_string())?
                .trim();
            match plain_id(id) {
                true => Ok(Id(id.to_string())),
                false => Err("not a post id".into()),
            }
        }
        fn bytes(&self) -> Vec<u8> {
            self.0.clone().into_bytes()
        }
    }

    #[test]
    fn a_place_is_a_file_of_data_dir_and_a_damaged_one_is_named_and_never_saved_over() {
        let dir = tempfile::tempdir().unwrap();
        let places: Places<Id> = Places::new(
            Arc::new(InDataDir::new(dir.path())),
            "chat/mattermost/mm".into(),
            "id",
        );
        assert_eq!(places.get("k-1").unwrap(), None);
        assert!(!places.has("k-1"));
        places.put("k-1", Id("post1".into())).unwrap();
        let name = places.name("k-1");
        assert!(name.starts_with("chat/mattermost/mm/") && name.ends_with(".id"));
        assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), b"post1");
        assert_eq!(places.get("k-1").unwrap(), Some(Id("post1".into())));
        for bad in [&b""[..], b"../../users/me", b"a b"] {
            std::fs::write(dir.path().join(&name), bad).unwrap();
            let err = places.get("k-1").unwrap_err();
            assert!(matches!(err, PlaceError::Damaged { .. }), "{err}");
            assert!(err.to_string().contains(&name), "{err}");
            assert!(places.has("k-1"), "damage is not 'not posted'");
            assert!(places.put("k-1", Id("post2".into())).is_err());
            assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), bad);
        }
    }
}
