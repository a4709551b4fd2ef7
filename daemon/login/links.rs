//! One-time action links: the Approve / Request changes / Reject links of a reviewer's mail.
//! A link's token is the credential (the person who follows it signs in nowhere), so it binds
//! everything it may do: reviewer, handoff key, revision, outcome and expiry, under an
//! HMAC-SHA256 with a key kept as the document `links/key` (`crate::store::mac_keys::MacKeys`: one
//! daemon's `data_dir/links/key`, owner-only; a cluster's row, so a link mailed by one node is
//! taken by every other). Nothing is stored when a link is made; one that was used is
//! remembered by the SHA-256 of its token only (the document `links/used.json`, kept until the
//! link would have expired), so a copy of data_dir holds no live link. This module is the
//! token and that memory; what a link may decide (the handoff's state, the usual rules) is the
//! app's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// Each MAC is over this label and the payload, so no other HMAC baton makes can pass for one.
const DOMAIN: &[u8] = b"baton action link v1\n";
/// A push notification's actions are signed under their own label: a push token is no mail
/// link (which decides with no sign-in), and a mail link is no push token.
const PUSH_DOMAIN: &[u8] = b"baton push action v1\n";

/// Where a token was handed out, and so what it takes to use it: a mail's link is the
/// credential itself; a push notification's action also needs its reviewer's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Mail,
    Push,
}

impl Channel {
    fn domain(self) -> &'static [u8] {
        match self {
            Channel::Mail => DOMAIN,
            Channel::Push => PUSH_DOMAIN,
        }
    }
}
/// Tokens start with it: the format can change without old links being misread.
const VERSION: &str = "l1";
/// Longest token read (a key is up to 128 characters; the rest is small).
pub const MAX_TOKEN: usize = 1024;

/// The outcomes a link may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkOutcome {
    Approved,
    ChangesRequested,
    Rejected,
}

impl LinkOutcome {
    pub const ALL: [LinkOutcome; 3] = [
        LinkOutcome::Approved,
        LinkOutcome::ChangesRequested,
        LinkOutcome::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkOutcome::Approved => "approved",
            LinkOutcome::ChangesRequested => "changes_requested",
            LinkOutcome::Rejected => "rejected",
        }
    }

    /// The button's words.
    pub fn label(self) -> &'static str {
        match self {
            LinkOutcome::Approved => "Approve",
            LinkOutcome::ChangesRequested => "Request changes",
            LinkOutcome::Rejected => "Reject",
        }
    }
}

/// What a link may do, as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The reviewer (`[[users]]` name) it decides as.
    #[serde(rename = "r")]
    pub reviewer: String,
    /// The handoff's key.
    #[serde(rename = "k")]
    pub key: String,
    /// The revision the mail was about; a newer one in place refuses the link.
    #[serde(rename = "v")]
    pub revision: u32,
    #[serde(rename = "o")]
    pub outcome: LinkOutcome,
    /// The digest of the content it was about (`handoff_sha256`): the same key and revision
    /// with other content (a workspace folder made again) refuses it. None in links made by
    /// an older baton, which are refused too.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Unix seconds after which it is refused.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// Why a token is not a link of this daemon's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("this link is not one baton made (it was cut short, changed, or made by another daemon); nothing was decided. Open the handoff from the mail's other link, or in baton")]
    Invalid,
}

/// The document of the links' key (`crate::store::mac_keys::MacKeys`): `data_dir/links/key` for one
/// daemon, as before; a row of a cluster's documents.
pub const KEY: &str = "links/key";
/// What a new key refuses.
const LOST: &str = "links already mailed stop working";

/// The key links are signed with.
pub struct LinkKey(crate::private::MacKey);

impl LinkKey {
    /// The key of `data_dir`, made on first use (one daemon's file, whatever the daemon
    /// shares).
    pub fn open(data_dir: &Path) -> io::Result<LinkKey> {
        // Made by `key_file` (create-new, so callers with no shared lock never make two),
        // then read as the document it is: the same file, 64 hex digits.
        crate::private::key_file(&data_dir.join(KEY), LOST)?;
        LinkKey::shared(&crate::store::mac_keys::MacKeys::in_data_dir(data_dir))
    }

    /// The key kept by `keys` (every node of a cluster reads the same), made once on first
    /// use under its document's lock; a damaged one is an error naming its place.
    pub fn shared(keys: &crate::store::mac_keys::MacKeys) -> io::Result<LinkKey> {
        keys.get(KEY, LOST).map(LinkKey)
    }

    fn mac(&self, channel: Channel, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.hmac();
        mac.update(channel.domain());
        mac.update(payload);
        mac
    }

    /// The token of `link`: `l1.<payload>.<mac>`, base64url, fit for a URL path segment.
    pub fn mint(&self, link: &Link) -> String {
        self.mint_for(Channel::Mail, link)
    }

    /// The token of `link` for `channel`: good on that channel only.
    pub fn mint_for(&self, channel: Channel, link: &Link) -> String {
        let payload = serde_json::to_vec(link).expect("a link serializes");
        let tag = self.mac(channel, &payload).finalize().into_bytes();
        format!("{VERSION}.{}.{}", B64.encode(&payload), B64.encode(tag))
    }

    /// The link a token carries, when this key signed it (compared in constant time).
    pub fn read(&self, token: &str) -> Result<Link, TokenError> {
        self.read_for(Channel::Mail, token)
    }

    /// The link a token of `channel` carries, when this key signed it for that channel.
    pub fn read_for(&self, channel: Channel, token: &str) -> Result<Link, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Invalid);
        }
        let mut parts = token.split('.');
        let (Some(VERSION), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let payload = B64.decode(payload).map_err(|_| TokenError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        self.mac(channel, &payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Invalid)?;
        serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)
    }
}

/// The document of the used links' marks: `{"<sha256 of the token, hex>": expires}`.
pub const USED: &str = "links/used.json";

/// The used links, by the SHA-256 of their tokens, as the document `USED` (one daemon's
/// `data_dir/links/used.json`; a cluster's row, so a link used on one node is used on every
/// node). A mark is taken under the document's change lock, so of two uses at once (on two
/// nodes) one takes it and the other finds it taken. A mark is kept until its link would have
/// expired (a used link that expired is refused as expired anyway): each mark taken drops the
/// expired ones, which bounds the document by the links used within one `action_link_ttl_s`.
/// A document that does not read is an error naming its place, never "unused".
pub struct Used {
    documents: std::sync::Arc<dyn crate::documents::Documents>,
    /// Where an older baton kept its marks, one file per used link: still read, never written,
    /// emptied as they expire.
    legacy: PathBuf,
}

type Marks = std::collections::BTreeMap<String, u64>;

/// One change of the marks at a time in this process, whichever keeper of the file makes it
/// (each keeper's own lock orders only its own changes).
static CHANGING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Used {
    /// One daemon's used links: `data_dir/links/used.json`.
    #[cfg(test)]
    pub fn new(data_dir: &Path) -> Used {
        let documents = std::sync::Arc::new(crate::documents::InDataDir::new(data_dir));
        Used::shared(data_dir, documents)
    }

    /// The used links kept by `documents` (a cluster's rows), and this node's older marks in
    /// `data_dir`.
    pub fn shared(
        data_dir: &Path,
        documents: std::sync::Arc<dyn crate::documents::Documents>,
    ) -> Used {
        Used {
            documents,
            legacy: data_dir.join("links").join("used"),
        }
    }

    /// The key a token's mark is kept by: the SHA-256 of the token, hex. A node that checked
    /// a token can name its mark to another with it, and the token stays where it was shown.
    pub fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    fn parse(&self, bytes: Option<&[u8]>) -> io::Result<Marks> {
        let Some(bytes) = bytes else {
            return Ok(Marks::new());
        };
        serde_json::from_slice(bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the used action links do not read ({e}); no link decides until it is mended or removed (removing it forgets which unexpired links were used)",
                    self.documents.place(USED)
                ),
            )
        })
    }

    /// Whether an older baton's file marks `hash` used (an unreadable folder is an error).
    fn legacy_marks(&self, hash: &str) -> io::Result<bool> {
        self.legacy.join(hash).try_exists()
    }

    /// Whether `token` was used; an unreadable record is an error, never "unused".
    pub fn is_used(&self, token: &str) -> io::Result<bool> {
        self.is_marked(&Used::hash(token))
    }

    /// Whether the token of `hash` (`Used::hash`) was used.
    pub fn is_marked(&self, hash: &str) -> io::Result<bool> {
        if self.legacy_marks(hash)? {
            return Ok(true);
        }
        let marks = self.parse(self.documents.read(USED)?.as_deref())?;
        Ok(marks.contains_key(hash))
    }

    /// Marks `token` used until `expires` (unix s), under the document's lock: `false` when it
    /// already was (by another node, another request), and nothing changes. Drops the marks of
    /// links expired by `now`.
    pub fn claim(&self, token: &str, expires: u64, now: u64) -> io::Result<bool> {
        self.mark(&Used::hash(token), expires, now)
    }

    /// `claim`, for the token of `hash` (`Used::hash`).
    pub fn mark(&self, hash: &str, expires: u64, now: u64) -> io::Result<bool> {
        let hash = hash.to_string();
        let mut taken = false;
        let _one = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
        self.documents.change(USED, &mut |bytes| {
            let mut marks = self.parse(bytes)?;
            if marks.contains_key(&hash) || self.legacy_marks(&hash)? {
                return Ok(None);
            }
            marks.retain(|_, until| *until >= now);
            marks.insert(hash.clone(), expires);
            taken = true;
            Ok(Some(serde_json::to_vec(&marks).expect("marks serialize")))
        })?;
        self.forget_expired_legacy(now);
        Ok(taken)
    }

    /// Takes back the mark of `token`, when what it was taken for did not happen.
    pub fn release(&self, token: &str) -> io::Result<()> {
        self.unmark(&Used::hash(token))
    }

    /// `release`, for the token of `hash` (`Used::hash`).
    pub fn unmark(&self, hash: &str) -> io::Result<()> {
        let _one = CHANGING.lock().unwrap_or_else(|e| e.into_inner());
        self.documents.change(USED, &mut |bytes| {
            let mut marks = self.parse(bytes)?;
            Ok(marks
                .remove(hash)
                .map(|_| serde_json::to_vec(&marks).expect("marks serialize")))
        })
    }

    /// Removes an older baton's marks of links expired by `now` (best effort: one left is
    /// still a mark).
    fn forget_expired_legacy(&self, now: u64) {
        let Ok(entries) = std::fs::read_dir(&self.legacy) else {
            return;
        };
        for entry in entries.flatten() {
            let until = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok());
            if until.is_some_and(|u| u < now) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            reviewer: "rita".into(),
            key: "alpha.k-1".into(),
            revision: 2,
            outcome: LinkOutcome::Approved,
            digest: Some("ab12".into()),
            expires: 1_900_000_000,
        }
    }

    #[test]
    fn a_token_reads_back_and_any_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = LinkKey::open(dir.path()).unwrap();
        let token = key.mint(&link());
        assert_eq!(key.read(&token), Ok(link()));
        // The same key after a restart.
        assert_eq!(LinkKey::open(dir.path()).unwrap().read(&token), Ok(link()));
        let (payload, tag) = token["l1.".len()..].split_once('.').unwrap();
        let mut other = link();
        other.reviewer = "sam".into();
        let swapped = format!(
            "l1.{}.{tag}",
            B64.encode(serde_json::to_vec(&other).unwrap())
        );
        assert_eq!(key.read(&swapped), Err(TokenError::Invalid));
        let mut bad_tag = B64.decode(tag).unwrap();
        bad_tag[0] ^= 1;
        let forged = format!("l1.{payload}.{}", B64.encode(bad_tag));
        assert_eq!(key.read(&forged), Err(TokenError::Invalid));
        let elsewhere = tempfile::tempdir().unwrap();
        let other_key = LinkKey::open(elsewhere.path()).unwrap();
        assert_eq!(other_key.read(&token), Err(TokenError::Invalid));
        assert_eq!(key.read("l1.x"), Err(TokenError::Invalid));
    }

    #[test]
    fn a_push_token_is_no_mail_link_and_a_mail_link_no_push_token() {
        let dir = tempfile::tempdir().unwrap();
        let key = LinkKey::open(dir.path()).unwrap();
        let push = key.mint_for(Channel::Push, &link());
        assert_eq!(key.read_for(Channel::Push, &push), Ok(link()));
        assert_eq!(key.read(&push), Err(TokenError::Invalid));
        let mail = key.mint(&link());
        assert_eq!(key.read_for(Channel::Push, &mail), Err(TokenError::Invalid));
    }

    #[test]
    fn used_tokens_are_kept_hashed_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let used = Used::new(dir.path());
        assert!(!used.is_used("t1").unwrap());
        assert!(used.claim("t1", 100, 50).unwrap());
        assert!(!used.claim("t1", 100, 60).unwrap(), "a mark is taken once");
        assert!(used.is_used("t1").unwrap() && !used.is_used("t2").unwrap());
        let text = std::fs::read_to_string(dir.path().join(USED)).unwrap();
        assert!(
            !text.contains("t1") && text.contains(&Used::hash("t1")),
            "{text}"
        );
        assert!(used.claim("t2", 300, 200).unwrap());
        assert!(!used.is_used("t1").unwrap(), "expired marks are dropped");
        assert!(used.is_used("t2").unwrap());
        used.release("t2").unwrap();
        assert!(!used.is_used("t2").unwrap());
    }

    #[test]
    fn an_older_batons_marks_still_count_and_a_damaged_record_is_never_unused() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("links/used");
        std::fs::create_dir_all(&legacy).unwrap();
        std::fs::write(legacy.join(Used::hash("old")), b"1000").unwrap();
        std::fs::write(legacy.join(Used::hash("gone")), b"10").unwrap();
        let used = Used::new(dir.path());
        assert!(used.is_used("old").unwrap());
        assert!(
            !used.claim("old", 1000, 50).unwrap(),
            "used by the older baton"
        );
        assert!(used.claim("new", 1000, 50).unwrap());
        assert!(
            !legacy.join(Used::hash("gone")).exists(),
            "expired: forgotten"
        );
        std::fs::write(dir.path().join(USED), b"{not json").unwrap();
        let err = used.is_used("other").unwrap_err();
        assert!(err.to_string().contains("links/used.json"), "{err}");
        assert!(used.claim("other", 1000, 50).is_err());
        assert!(
            used.is_used("other").is_err(),
            "an unreadable record refuses"
        );
        assert_eq!(
            std::fs::read(dir.path().join(USED)).unwrap(),
            b"{not json",
            "never replaced"
        );
    }

    #[test]
    fn the_shared_key_is_the_data_dirs_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let old = LinkKey::open(dir.path()).unwrap();
        let token = old.mint(&link());
        let keys = crate::store::mac_keys::MacKeys::in_data_dir(dir.path());
        assert_eq!(LinkKey::shared(&keys).unwrap().read(&token), Ok(link()));
        std::fs::write(dir.path().join(KEY), b"damaged").unwrap();
        let err = LinkKey::shared(&keys).err().unwrap();
        assert!(err.to_string().contains("links/key"), "{err}");
        assert_eq!(std::fs::read(dir.path().join(KEY)).unwrap(), b"damaged");
    }
}
