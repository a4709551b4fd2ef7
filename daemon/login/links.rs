//! One-time action links: the Approve / Request changes / Reject links of a reviewer's mail.
//! A link's token is the credential (the person who follows it signs in nowhere), so it binds
//! everything it may do: reviewer, handoff key, revision, outcome and expiry, under an
//! HMAC-SHA256 with a key kept in `data_dir/links/key` (owner-only). Nothing is stored when a
//! link is made; one that was used is remembered by the SHA-256 of its token only (a file in
//! `data_dir/links/used/`, kept until the link would have expired), so a copy of data_dir
//! holds no live link. This module is the token and that memory; what a link may decide
//! (the handoff's state, the usual rules) is the app's.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The key links are signed with.
pub struct LinkKey([u8; 32]);

impl LinkKey {
    /// The key of `data_dir`, made on first use.
    pub fn open(data_dir: &Path) -> io::Result<LinkKey> {
        let path = data_dir.join("links/key");
        crate::private::key_file(&path, "links already mailed stop working").map(LinkKey)
    }

    fn mac(&self, channel: Channel, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
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

/// The used links of a data_dir, by the SHA-256 of their tokens.
pub struct Used {
    dir: PathBuf,
}

impl Used {
    pub fn new(data_dir: &Path) -> Used {
        Used {
            dir: data_dir.join("links").join("used"),
        }
    }

    fn path_of(&self, token: &str) -> PathBuf {
        self.dir.join(hex::encode(Sha256::digest(token.as_bytes())))
    }

    pub fn contains(&self, token: &str) -> bool {
        self.path_of(token).exists()
    }

    /// Remembers `token` as used until `expires` (unix s), and forgets the links that have
    /// expired since (a used link that expired is refused as expired anyway).
    pub fn insert(&self, token: &str, expires: u64, now: u64) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        match crate::private::write_new(&self.path_of(token), expires.to_string().as_bytes()) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let until = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok());
            if until.is_some_and(|u| u < now) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
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
        assert!(!used.contains("t1"));
        used.insert("t1", 100, 50).unwrap();
        assert!(used.contains("t1") && !used.contains("t2"));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("links/used"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.len() == 64 && !n.contains("t1")));
        used.insert("t2", 300, 200).unwrap();
        assert!(!used.contains("t1"), "expired entries are forgotten");
        assert!(used.contains("t2"));
    }
}
