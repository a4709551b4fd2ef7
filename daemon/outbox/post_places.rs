//! Where a handoff's chat posts were made (a Slack message's channel and ts, a Mattermost
//! post's id, a `direct` entry's copies), kept as documents (`crate::documents`) so that
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
//!
//! A place names the handoff and revision whose post it is (`Kept::revision`; places kept
//! before it did name neither and are still read): one naming another handoff is damage (a
//! row misfiled or copied over would send the decision's update to another handoff's post),
//! and a post of an older revision (a late retry) never replaces a newer one's place (the
//! decision would update the stale post, and leave the newer one's buttons live).

use crate::documents::Documents;
use std::io;
use std::marker::PhantomData;
use std::sync::Arc;

/// Why a place cannot be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error("{place} is damaged ({why}); it is left as it is, and no chat post of this handoff is updated from it. {advice}")]
    Damaged {
        place: String,
        why: String,
        /// What to do, for this kind of place (`Kept::advice`).
        advice: String,
    },
    #[error("cannot read or write {place}: {why}")]
    Io { place: String, why: String },
}

/// What a place holds, as its document's bytes.
pub trait Kept: Sized {
    /// What `bytes`, kept for handoff `key`, say; why not, when they are not what is written
    /// (or name another handoff than `key`).
    fn parse(bytes: &[u8], key: &str) -> Result<Self, String>;
    fn bytes(&self) -> Vec<u8>;
    /// The revision whose post this is; None in places kept before it was written.
    fn revision(&self) -> Option<u32>;
    /// What a person can do about a damaged place of `key`, with an example of a sound body.
    fn advice(key: &str) -> String;
}

/// What `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// The place now names the post.
    Saved,
    /// The place names a newer revision's post (this one's revision): left as it is.
    Superseded { kept: u32 },
}

/// Handoff `key` in JSON, for the examples of advice.
pub fn quoted(key: &str) -> String {
    serde_json::to_string(key).expect("a string serializes")
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
            advice: T::advice(key),
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
    /// then made, and each of its attempts names the damage), and so does a place that cannot
    /// be read now (the database or disk failing): an update made for nothing fails "not
    /// posted" until it is dead, which is listed and can be dismissed, where one not made
    /// would leave a real post's buttons live, unseen. Each attempt reads the place again.
    pub fn has(&self, key: &str) -> bool {
        match self.get(key) {
            Ok(found) => found.is_some(),
            Err(e @ PlaceError::Damaged { .. }) => {
                tracing::warn!(error = %e, key, "a chat post place is damaged; the decision's update is made, and names it at each attempt");
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, key, "whether a chat post of this handoff was made cannot be read now; its decision's update is made anyway, and reads the place again when sent");
                true
            }
        }
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

    /// Keeps `value` as `key`'s place, in place of the one kept when `value`'s revision is
    /// at least its (a new revision's post, or the same revision posted again); a place of a
    /// newer revision is left as it is (`Put::Superseded`), and so is one of a known
    /// revision when `value`'s is not known. Refused over a damaged one.
    pub fn put(&self, key: &str, value: T) -> Result<Put, PlaceError>
    where
        T: Send,
    {
        let ours = value.revision();
        let mut value = Some(value);
        let mut put = Put::Saved;
        self.change(key, |now| {
            match (now.as_ref().and_then(T::revision), ours) {
                (Some(kept), Some(ours)) if ours < kept => put = Put::Superseded { kept },
                (Some(kept), None) => put = Put::Superseded { kept },
                _ => return value.take(),
            }
            None
        })?;
        Ok(put)
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
    use crate::documents::InDataDir;

    #[derive(Debug, PartialEq)]
    struct Id(String);

    impl Kept for Id {
        fn revision(&self) -> Option<u32> {
            None
        }
        fn advice(key: &str) -> String {
            format!("Write the post's id, e.g. abc for {}.", quoted(key))
        }
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

    fn slack(dir: &std::path::Path) -> Places<crate::outbox::chat::Message> {
        crate::outbox::chat::posted(Arc::new(InDataDir::new(dir)), "team")
    }

    fn message(ts: &str, key: &str, revision: Option<u32>) -> crate::outbox::chat::Message {
        crate::outbox::chat::Message {
            channel: "C1".into(),
            ts: ts.into(),
            key: Some(key.into()),
            revision,
        }
    }

    #[test]
    fn an_older_revisions_post_never_replaces_a_newer_ones_place() {
        let dir = tempfile::tempdir().unwrap();
        let places = slack(dir.path());
        assert_eq!(
            places.put("k-1", message("1.2", "k-1", Some(2))).unwrap(),
            Put::Saved
        );
        // Revision 1's post, answered late (a retry), keeps nothing: the decision updates
        // revision 2's message.
        let late = places.put("k-1", message("1.1", "k-1", Some(1))).unwrap();
        assert_eq!(late, Put::Superseded { kept: 2 });
        // Nor does a post whose revision is not known.
        let unknown = places.put("k-1", message("1.0", "k-1", None)).unwrap();
        assert_eq!(unknown, Put::Superseded { kept: 2 });
        assert_eq!(places.get("k-1").unwrap().unwrap().ts, "1.2");
        // The same revision posted again, or a newer one, replaces it.
        assert_eq!(
            places.put("k-1", message("1.3", "k-1", Some(2))).unwrap(),
            Put::Saved
        );
        assert_eq!(
            places.put("k-1", message("1.4", "k-1", Some(3))).unwrap(),
            Put::Saved
        );
        assert_eq!(
            places.get("k-1").unwrap(),
            Some(message("1.4", "k-1", Some(3)))
        );
        // Mattermost's places alike.
        use crate::outbox::mattermost::PostId;
        let mm = crate::outbox::mattermost::posted(Arc::new(InDataDir::new(dir.path())), "mm");
        let id = |id: &str, revision| PostId {
            id: id.into(),
            key: Some("k-1".into()),
            revision: Some(revision),
        };
        assert_eq!(mm.put("k-1", id("post2", 2)).unwrap(), Put::Saved);
        assert_eq!(
            mm.put("k-1", id("post1", 1)).unwrap(),
            Put::Superseded { kept: 2 }
        );
        assert_eq!(mm.get("k-1").unwrap(), Some(id("post2", 2)));
    }

    #[test]
    fn a_place_naming_another_handoff_is_damage_and_updates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let places = slack(dir.path());
        // Another handoff's well-formed place, filed under k-1's name.
        let name = places.name("k-1");
        std::fs::create_dir_all(dir.path().join(&name).parent().unwrap()).unwrap();
        let other = br#"{"channel":"C9","ts":"9.9","key":"k-2","revision":1}"#;
        std::fs::write(dir.path().join(&name), other).unwrap();
        let err = places.get("k-1").unwrap_err();
        let said = err.to_string();
        assert!(matches!(err, PlaceError::Damaged { .. }), "{said}");
        assert!(
            said.contains("names handoff \"k-2\", not \"k-1\""),
            "{said}"
        );
        assert!(said.contains(&name), "{said}");
        // The advice fits a channel's place: an example of a sound body, and what deleting
        // it does (no "post the review again": nothing is posted again).
        assert!(said.contains(r#""key":"k-1","revision":1"#), "{said}");
        assert!(said.contains("Deleting it posts nothing again"), "{said}");
        assert!(places.put("k-1", message("1.1", "k-1", Some(9))).is_err());
        assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), other);
        use crate::outbox::mattermost::posted;
        let mm = posted(Arc::new(InDataDir::new(dir.path())), "mm");
        let name = mm.name("k-1");
        std::fs::create_dir_all(dir.path().join(&name).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(&name), br#"{"id":"p9","key":"k-2"}"#).unwrap();
        let said = mm.get("k-1").unwrap_err().to_string();
        assert!(said.contains("names handoff \"k-2\""), "{said}");
        assert!(said.contains(r#"{"id":"#), "{said}");
    }

    #[test]
    fn places_kept_before_they_named_handoff_and_revision_are_read_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let places = slack(dir.path());
        let name = places.name("k-1");
        std::fs::create_dir_all(dir.path().join(&name).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(&name), br#"{"channel":"C1","ts":"1.1"}"#).unwrap();
        let legacy = places.get("k-1").unwrap().unwrap();
        assert_eq!(
            (legacy.ts.as_str(), legacy.key, legacy.revision),
            ("1.1", None, None)
        );
        assert_eq!(
            places.put("k-1", message("1.2", "k-1", Some(1))).unwrap(),
            Put::Saved
        );
        use crate::outbox::mattermost::{posted, PostId};
        let mm = posted(Arc::new(InDataDir::new(dir.path())), "mm");
        let name = mm.name("k-1");
        std::fs::create_dir_all(dir.path().join(&name).parent().unwrap()).unwrap();
        std::fs::write(dir.path().join(&name), b"hx8ud1zr3fgcdmtwzzkfp3ok9a\n").unwrap();
        let bare = PostId {
            id: "hx8ud1zr3fgcdmtwzzkfp3ok9a".into(),
            key: None,
            revision: None,
        };
        assert_eq!(mm.get("k-1").unwrap(), Some(bare));
        let now = PostId {
            id: "p2".into(),
            key: Some("k-1".into()),
            revision: Some(2),
        };
        assert_eq!(mm.put("k-1", now.clone()).unwrap(), Put::Saved);
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(&name)).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"id": "p2", "key": "k-1", "revision": 2})
        );
        assert_eq!(mm.get("k-1").unwrap(), Some(now));
    }
}
