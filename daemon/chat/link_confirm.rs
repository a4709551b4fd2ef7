//! The Slack user's own confirmation of an admin's link: a direct message to that user
//! (`chat.postMessage` with the user id as channel) saying who linked the account to whom,
//! with Confirm / Not me buttons. Each button's `value` names the chat user, the link's
//! nonce and the answer, MACed with a key only this daemon holds (`data_dir/chat/link-key`):
//! a value altered or made by hand (even in a request signed with the app's signing secret)
//! is refused, and a value of an earlier link of the same user confirms nothing (its nonce is
//! not the link's). Only a click by the user the value names counts.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::io;
use std::path::Path;

/// The buttons' `action_id`s.
pub const CONFIRM: &str = "baton_link_confirm";
pub const REFUSE: &str = "baton_link_refuse";
/// The `block_id` of the buttons' block.
pub const BLOCK: &str = "baton_link";
/// Keeps keys of other uses apart from this one.
const DOMAIN: &[u8] = b"baton slack link confirm v1\0";

/// What a button answers, for whom, about which link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The Slack user the link names: only their click counts.
    #[serde(rename = "u")]
    pub chat_user: String,
    /// The link's nonce.
    #[serde(rename = "n")]
    pub nonce: String,
    /// true: Confirm; false: Not me.
    #[serde(rename = "c")]
    pub confirm: bool,
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

/// The daemon's key for confirmation buttons.
pub struct LinkKey([u8; 32]);

impl LinkKey {
    /// The key of `data_dir`, made on first use (0600).
    pub fn open(data_dir: &Path) -> io::Result<LinkKey> {
        let path = data_dir.join("chat/link-key");
        crate::private::key_file(
            &path,
            "confirmation messages already sent will be refused; each link's admin links it again",
        )
        .map(LinkKey)
    }

    fn mac(&self, a: &Answer) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(DOMAIN);
        mac.update(&serde_json::to_vec(a).expect("an answer serializes"));
        mac
    }

    pub fn seal(&self, a: &Answer) -> String {
        let mac = hex::encode(self.mac(a).finalize().into_bytes());
        serde_json::to_string(&Sealed { a: a.clone(), mac }).expect("a value serializes")
    }

    /// The answer `value` carries, when this key sealed it (compared in constant time) and
    /// `clicker` is the user it names.
    pub fn open_sealed(&self, value: &str, clicker: &str) -> Result<Answer, AnswerError> {
        let sealed: Sealed = serde_json::from_str(value).map_err(|_| AnswerError::Tampered)?;
        let given = hex::decode(&sealed.mac).map_err(|_| AnswerError::Tampered)?;
        self.mac(&sealed.a)
            .verify_slice(&given)
            .map_err(|_| AnswerError::Tampered)?;
        if sealed.a.chat_user != clicker {
            return Err(AnswerError::NotTheirs {
                for_user: sealed.a.chat_user,
            });
        }
        Ok(sealed.a)
    }
}

/// The `chat.postMessage` arguments of the confirmation message to `chat_user` (a DM: the
/// user id as channel): `admin` linked it to baton user `user`.
pub fn message(key: &LinkKey, chat_user: &str, nonce: &str, admin: &str, user: &str) -> Value {
    let value = |confirm| {
        key.seal(&Answer {
            chat_user: chat_user.to_string(),
            nonce: nonce.to_string(),
            confirm,
        })
    };
    let said = format!(
        "{} linked this Slack account to baton user *{}*. Until you confirm it, your clicks on baton's buttons decide nothing. Not you? Answer *Not me* and the link is removed and the admins told.",
        escape(admin),
        escape(user)
    );
    let text = format!(
        "[baton] {admin} linked this Slack account to baton user {user}: Confirm or Not me"
    );
    json!({
        "channel": chat_user,
        "text": escape(&text),
        "unfurl_links": false,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": said } },
            { "type": "actions", "block_id": BLOCK, "elements": [
                { "type": "button", "action_id": CONFIRM, "style": "primary", "value": value(true),
                  "text": { "type": "plain_text", "text": "Confirm" } },
                { "type": "button", "action_id": REFUSE, "style": "danger", "value": value(false),
                  "text": { "type": "plain_text", "text": "Not me" } },
            ] }
        ]
    })
}

/// Slack's three escapes for text it formats (names are plain, but a config may hold anything).
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_answer_opens_for_its_user_only_and_refuses_alteration() {
        let dir = tempfile::tempdir().unwrap();
        let key = LinkKey::open(dir.path()).unwrap();
        let a = Answer {
            chat_user: "U1".into(),
            nonce: "n".into(),
            confirm: true,
        };
        let v = key.seal(&a);
        assert_eq!(key.open_sealed(&v, "U1"), Ok(a));
        assert!(matches!(
            key.open_sealed(&v, "U2"),
            Err(AnswerError::NotTheirs { .. })
        ));
        let altered = v.replace("\"c\":true", "\"c\":false");
        assert_ne!(altered, v);
        assert_eq!(key.open_sealed(&altered, "U1"), Err(AnswerError::Tampered));
        let m = message(&key, "U1", "n", "boss", "rita");
        assert_eq!(m["channel"], "U1");
        assert_eq!(m["blocks"][1]["elements"][0]["value"], v);
    }
}
