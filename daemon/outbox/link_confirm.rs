//! The confirmation of an admin's link of a Slack account: a direct message to that Slack
//! user (`chat.postMessage` with the user id as channel) saying who linked the account to
//! which baton user. Its Confirm is a URL button to baton's page `/chat/links/confirm?t=TOKEN`:
//! the link counts only once the baton user it names, signed in to baton, confirms there.
//! The direct message alone proves only that the Slack account's holder saw it and agrees;
//! an admin who linked their own Slack id to someone else would receive it and could
//! click. The sign-in proves who that someone is, and the token (only in that direct
//! message) ties their confirmation to the Slack account that received it.
//!
//! The token and Not me's `value` are MACed with a key only this daemon holds
//! (`data_dir/chat/link-key`), under different domains: one altered or made by hand is
//! refused, and one of an earlier link of the same Slack user confirms nothing (its nonce is
//! not the link's). Not me stays a Slack click: whoever holds that Slack account may refuse a
//! link of it, which only removes the link. A Confirm value sealed by an older baton (a Slack
//! click carrying `c: true`) confirms nothing.

use super::slack::escape;
use crate::private::MacKey;
use crate::store::mac_keys::MacKeys;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::io;

/// The buttons' `action_id`s. Confirm is a URL button: Slack tells its click too, and that
/// click confirms nothing.
pub const CONFIRM: &str = "baton_link_confirm";
pub const REFUSE: &str = "baton_link_refuse";
/// The `block_id` of the buttons' block.
pub const BLOCK: &str = "baton_link";
/// Keeps keys of other uses apart from this one.
const DOMAIN: &[u8] = b"baton slack link confirm v1\0";
/// The domain of the confirmation page's token: no button value opens as a token.
const PAGE_DOMAIN: &[u8] = b"baton slack link confirm page v2\0";

/// What a button answers, for whom, about which link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The Slack user the link names: only their click counts.
    #[serde(rename = "u")]
    pub chat_user: String,
    /// The link's nonce.
    #[serde(rename = "n")]
    pub nonce: String,
    /// false: Not me. true only in a Confirm value sealed by an older baton, which confirms
    /// nothing now (confirming takes the baton user, signed in, on the page).
    #[serde(rename = "c")]
    pub confirm: bool,
}

/// What the confirmation page's token names: the link of `chat_user` with `nonce`, to baton
/// user `user`. Only that user, signed in, may confirm with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    #[serde(rename = "u")]
    pub chat_user: String,
    #[serde(rename = "n")]
    pub nonce: String,
    #[serde(rename = "b")]
    pub user: String,
}

#[derive(Serialize, Deserialize)]
struct SealedToken {
    t: Token,
    mac: String,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    a: Answer,
    mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the button's value is not baton's or was altered (its MAC does not match): refused; nothing changed")]
    Tampered,
    #[error("this confirmation is for another Slack account ({for_user}); only that person may answer it; nothing changed")]
    NotTheirs { for_user: String },
}

/// The daemon's key for confirmation buttons and tokens.
pub struct LinkKey(MacKey);

impl LinkKey {
    /// The key of confirmations (`data_dir/chat/link-key` for one daemon, a row shared by a
    /// cluster's nodes), made on first use.
    pub fn open(keys: &MacKeys) -> io::Result<LinkKey> {
        keys.get(
            "chat/link-key",
            "confirmation messages already sent will be refused; each link's admin links it again",
        )
        .map(LinkKey)
    }

    /// The confirmation page's token for `t` (URL-safe base64 of the sealed JSON).
    pub fn seal_token(&self, t: &Token) -> String {
        let mac = self.0.seal(PAGE_DOMAIN, t);
        let json =
            serde_json::to_vec(&SealedToken { t: t.clone(), mac }).expect("a token serializes");
        URL_SAFE_NO_PAD.encode(json)
    }

    /// What `token` names, when this key sealed it (compared in constant time).
    pub fn open_token(&self, token: &str) -> Result<Token, AnswerError> {
        let json = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| AnswerError::Tampered)?;
        let sealed: SealedToken =
            serde_json::from_slice(&json).map_err(|_| AnswerError::Tampered)?;
        if !self.0.verify(PAGE_DOMAIN, &sealed.t, &sealed.mac) {
            return Err(AnswerError::Tampered);
        }
        Ok(sealed.t)
    }

    pub fn seal(&self, a: &Answer) -> String {
        let mac = self.0.seal(DOMAIN, a);
        serde_json::to_string(&Sealed { a: a.clone(), mac }).expect("a value serializes")
    }

    /// The answer `value` carries, when this key sealed it (compared in constant time) and
    /// `clicker` is the user it names.
    pub fn open_sealed(&self, value: &str, clicker: &str) -> Result<Answer, AnswerError> {
        let sealed: Sealed = serde_json::from_str(value).map_err(|_| AnswerError::Tampered)?;
        if !self.0.verify(DOMAIN, &sealed.a, &sealed.mac) {
            return Err(AnswerError::Tampered);
        }
        if sealed.a.chat_user != clicker {
            return Err(AnswerError::NotTheirs {
                for_user: sealed.a.chat_user,
            });
        }
        Ok(sealed.a)
    }
}

/// Where a confirmation message's Confirm URL takes its token, sealed in only as the message
/// is sent (`outbox::chat`): the message is kept (spooled, listed with the deliveries)
/// without it.
pub const TOKEN_SLOT: &str = "BATON-TOKEN-SEALED-WHEN-SENT";

/// The `chat.postMessage` arguments of the confirmation message to `chat_user` (a DM: the
/// user id as channel): `admin` linked it to baton user `user`. Confirm opens
/// `{public_url}/chat/links/confirm?t=TOKEN`, where `user` signs in and confirms; the URL
/// holds `TOKEN_SLOT` for the token of `token` (see `Token`), filled in when it is sent.
pub fn message(
    key: &LinkKey,
    public_url: &str,
    chat_user: &str,
    nonce: &str,
    admin: &str,
    user: &str,
) -> Value {
    let refuse = key.seal(&Answer {
        chat_user: chat_user.to_string(),
        nonce: nonce.to_string(),
        confirm: false,
    });
    let url = format!(
        "{}{}?t={TOKEN_SLOT}",
        public_url.trim_end_matches('/'),
        PAGE
    );
    let said = format!(
        "{} linked this Slack account to baton user *{}*. Until {} confirms it, signed in to baton, this account's clicks on baton's buttons decide nothing. Are you {}? *Confirm* opens baton: sign in there as {} and confirm. Not you? Answer *Not me* and the link is removed and the admins told.",
        escape(admin),
        escape(user),
        escape(user),
        escape(user),
        escape(user)
    );
    let text = format!(
        "[baton] {admin} linked this Slack account to baton user {user}: confirm in baton signed in as {user}, or Not me"
    );
    json!({
        "channel": chat_user,
        "text": escape(&text),
        "unfurl_links": false,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": said } },
            { "type": "actions", "block_id": BLOCK, "elements": [
                { "type": "button", "action_id": CONFIRM, "style": "primary", "url": url,
                  "text": { "type": "plain_text", "text": "Confirm in baton" } },
                { "type": "button", "action_id": REFUSE, "style": "danger", "value": refuse,
                  "text": { "type": "plain_text", "text": "Not me" } },
            ] }
        ]
    })
}

/// The confirmation page's path (its token in `?t=`).
pub const PAGE: &str = "/chat/links/confirm";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_answer_opens_for_its_user_only_and_refuses_alteration() {
        let dir = tempfile::tempdir().unwrap();
        let key = LinkKey::open(&MacKeys::in_data_dir(dir.path())).unwrap();
        let a = Answer {
            chat_user: "U1".into(),
            nonce: "n".into(),
            confirm: true,
        };
        let v = key.seal(&a);
        assert_eq!(key.open_sealed(&v, "U1"), Ok(a.clone()));
        assert!(matches!(
            key.open_sealed(&v, "U2"),
            Err(AnswerError::NotTheirs { .. })
        ));
        let altered = v.replace("\"c\":true", "\"c\":false");
        assert_ne!(altered, v);
        assert_eq!(key.open_sealed(&altered, "U1"), Err(AnswerError::Tampered));
        let m = message(&key, "http://b", "U1", "n", "boss", "rita");
        assert_eq!(m["channel"], "U1");
        let no = key.seal(&Answer {
            confirm: false,
            ..a.clone()
        });
        assert_eq!(m["blocks"][1]["elements"][1]["value"], no);
        let url = m["blocks"][1]["elements"][0]["url"].as_str().unwrap();
        let slot = url.strip_prefix("http://b/chat/links/confirm?t=").unwrap();
        assert_eq!(slot, TOKEN_SLOT, "the message is kept without its token");
        let token = &key.seal_token(&Token {
            chat_user: "U1".into(),
            nonce: "n".into(),
            user: "rita".into(),
        });
        let t = key.open_token(token).unwrap();
        assert_eq!(
            (t.chat_user.as_str(), t.nonce.as_str(), t.user.as_str()),
            ("U1", "n", "rita")
        );
        // A button value is no token, and an altered token opens nothing.
        assert_eq!(key.open_token(&v), Err(AnswerError::Tampered));
        let forged = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(token).unwrap())
                .unwrap()
                .replace("rita", "mall"),
        );
        assert_eq!(key.open_token(&forged), Err(AnswerError::Tampered));
    }
}
