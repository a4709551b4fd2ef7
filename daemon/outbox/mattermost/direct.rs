//! `[[mattermost]]` with `direct = true`: each reviewer of the handoff's route gets their own
//! copy of the review post by direct message, its buttons sealed for that reviewer's
//! Mattermost user id and that direct channel, so a click naming another user is refused
//! (`ActionKey::open_sealed`). The direct channel is made (or found) with
//! `POST /api/v4/channels/direct` [bot, reviewer], the bot's id read once with
//! `GET /api/v4/users/me`.
//!
//! Which copies exist is kept per handoff as a document (`post_places`):
//! `data_dir/chat/mattermost/NAME/direct/` for one daemon, one JSON file each (written
//! atomically after every copy posted), rows of the same names shared by a cluster's nodes,
//! so a retried delivery posts only the copies still owed and the decision updates every copy,
//! on whichever node takes it. Each copy (and intent) is kept under the document's lock beside
//! what is kept there now (`DirectPosts::keep`), so two nodes posting at once lose neither's.
//! A place that does not parse is reported and left alone, never taken as empty and
//! overwritten: that would post the copies again and lose the ones the decision must update.
//!
//! Posting a copy is made idempotent the way Mattermost allows (it takes no idempotency key
//! for posts, and its `pending_post_id` is remembered for seconds only): the intent to post
//! is kept first (the direct channel, a random marker the post carries in its props as
//! `baton_copy`, and when), and only then is the post sent. A post whose answer was lost (a
//! timeout, a 5xx after Mattermost made it) or whose id could not be kept leaves the intent
//! behind; the retry reads the direct channel's posts since then
//! (`GET /api/v4/channels/{id}/posts?since=`) and takes the post with that marker, made by the
//! bot itself (`user_id`), instead of posting a second copy: the reviewer can post in that
//! channel too, and a post of theirs carrying the marker (copied from the bot's, whose props
//! clients see) is not baton's copy. Only an intent that cannot be kept stops the post
//! (retried later).

use super::{ActionKey, Binding, ButtonKey, Call, Sender};
use crate::documents::Documents;
use crate::outbox::attempt::Outcome as Sent;
use crate::outbox::post_places::{plain_id, quoted, Kept, PlaceError, Places};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One reviewer's copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copy {
    /// The direct channel (id) between the bot and the reviewer.
    pub channel: String,
    /// The post's id there.
    pub post: String,
}

/// A copy about to be posted, kept before the post is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The direct channel it is posted to.
    pub channel: String,
    /// Carried by the post (`props.baton_copy`): how a retry recognises it.
    pub marker: String,
    /// Unix ms, less a margin for the server's clock: the retry reads the channel's posts
    /// changed since then.
    pub since_ms: u64,
}

/// The copies of one handoff's latest posted revision, by Mattermost user id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copies {
    pub key: String,
    pub revision: u32,
    /// The digest of the content they show (`handoff_sha256`); None in files kept before
    /// it was, and for posts of events that did not carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// When the delivery of the content they show was made (its `created_at`, RFC 3339 UTC,
    /// fixed width so it orders as text): of two contents of one revision (its workspace
    /// folder made again), the later one's copies are kept. None in files kept before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made: Option<String>,
    pub posts: BTreeMap<String, Copy>,
    /// Copies being posted, by Mattermost user id, not yet known made.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub intents: BTreeMap<String, Intent>,
}

/// The prop a copy carries its marker in.
const MARKER: &str = "baton_copy";
/// How far back of this daemon's clock a retry looks for a copy (Mattermost dates posts
/// with its own clock).
const CLOCK_MARGIN_MS: u64 = 10 * 60 * 1000;

/// Why the copies of a handoff cannot be read or kept.
pub type StateError = PlaceError;

impl Kept for Copies {
    fn parse(bytes: &[u8], key: &str) -> Result<Copies, String> {
        let copies: Copies = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if copies.key != key {
            return Err(format!("it names handoff {}, not {key}", copies.key));
        }
        let ids = copies.posts.values().map(|c| c.post.as_str());
        if let Some(bad) = ids.into_iter().find(|id| !plain_id(id)) {
            return Err(format!("{bad:?} is not a Mattermost post id"));
        }
        Ok(copies)
    }

    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("copies serialize")
    }

    fn revision(&self) -> Option<u32> {
        Some(self.revision)
    }

    fn advice(key: &str) -> String {
        format!(
            "Mend it to name the copies Mattermost answered, e.g. {{\"key\":{},\"revision\":1,\
             \"posts\":{{\"<mattermost user id>\":{{\"channel\":\"<direct channel id>\",\
             \"post\":\"hx8ud1zr3fgcdmtwzzkfp3ok9a\"}}}}}}. Or move it away (delete it): a review \
             delivery still retried (or dead, then retried) posts every copy again, the copies it \
             named are then not updated; once the review was delivered, deleting it posts nothing, \
             and the decision's update fails until it is dead",
            quoted(key)
        )
    }
}

impl Copies {
    /// Whether these copies show what `delivery` does (its revision and content), as far as
    /// they tell (copies kept before the digest was are taken as the same content).
    fn show(&self, delivery: &Copies) -> bool {
        self.revision == delivery.revision
            && (self.digest.is_none() || self.digest == delivery.digest)
    }

    /// Whether these copies supersede a delivery showing `ours`: a newer revision's, or a
    /// later content's of the same revision.
    fn supersede(&self, ours: &Copies) -> bool {
        self.revision > ours.revision
            || (self.revision == ours.revision && !self.show(ours) && self.later_than(ours))
    }

    /// Whether these copies were made for a later content than `ours` of the same revision
    /// (the delivery made later); unknown (an older file) is not later.
    fn later_than(&self, ours: &Copies) -> bool {
        match (&self.made, &ours.made) {
            (Some(kept), Some(ours)) => kept > ours,
            _ => false,
        }
    }
}

/// The copies of one entry's handoffs, one place per handoff: `chat/mattermost/NAME/direct/`
/// of data_dir for one daemon, rows of the same names in a cluster (`post_places`).
#[derive(Clone)]
pub struct DirectPosts {
    places: Places<Copies>,
}

impl DirectPosts {
    pub fn new(documents: Arc<dyn Documents>, entry: &str) -> DirectPosts {
        let dir = format!("chat/mattermost/{entry}/direct");
        DirectPosts {
            places: Places::new(documents, dir, "json"),
        }
    }

    /// The copies of `key`: none if nothing was posted yet; an error if its place is damaged.
    pub fn get(&self, key: &str) -> Result<Option<Copies>, StateError> {
        self.places.get(key)
    }

    /// Keeps `user`'s entry of `ours` (their copy, their intent, or neither), under the
    /// place's lock, beside the other reviewers' entries as kept now: a copy another node or
    /// thread kept meanwhile for the same revision is not written over. `ours` of another
    /// revision (or content) than the one kept starts the place afresh, but never over a
    /// newer revision's copies, nor over a later content's of the same revision. Returns the
    /// copies as kept: when they do not show what `ours` does, nothing of ours was kept.
    pub fn keep(&self, ours: &Copies, user: &str) -> Result<Copies, StateError> {
        let kept = self.places.change(&ours.key, |now| {
            let mut c = match now {
                Some(c) if c.revision > ours.revision => return None,
                Some(c) if c.show(ours) => c,
                Some(c) if c.revision == ours.revision && c.later_than(ours) => return None,
                _ => ours.clone(),
            };
            match ours.posts.get(user) {
                Some(copy) => c.posts.insert(user.to_string(), copy.clone()),
                None => c.posts.remove(user),
            };
            match ours.intents.get(user) {
                Some(intent) => c.intents.insert(user.to_string(), intent.clone()),
                None => c.intents.remove(user),
            };
            Some(c)
        })?;
        Ok(kept.unwrap_or_else(|| ours.clone()))
    }

    /// Whether `key` has copies (a damaged place counts: its decision's update reports it).
    pub fn has(&self, key: &str) -> bool {
        self.places.has(key)
    }
}

/// Who a `direct` entry's copies go to: the Mattermost users linked to each route's
/// reviewers (by route name), and to a handoff on no route; and where the copies are kept.
pub struct Recipients {
    pub by_route: std::collections::HashMap<String, Vec<String>>,
    pub no_route: Vec<String>,
    pub posts: DirectPosts,
}

/// What a `direct` entry's sender needs besides the REST calls.
#[derive(Clone)]
pub struct Direct {
    pub posts: DirectPosts,
    pub key: Option<Arc<ButtonKey>>,
    /// The bot's user id, once asked.
    bot: Arc<Mutex<Option<String>>>,
}

impl Direct {
    pub fn new(posts: DirectPosts, key: Option<Arc<ButtonKey>>) -> Direct {
        Direct {
            posts,
            key,
            bot: Arc::default(),
        }
    }
}

fn failed(why: String) -> Sent {
    Sent::failed(why)
}

impl Sender {
    fn bot_id(&self) -> Result<String, Sent> {
        let mut bot = self.direct.bot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = bot.as_ref() {
            return Ok(id.clone());
        }
        let me = self.call("GET", "/users/me", &Value::Null)?;
        let id = me["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| failed("GET /api/v4/users/me: the answer names no id".into()))?
            .to_string();
        *bot = Some(id.clone());
        Ok(id)
    }

    /// Posts every reviewer in `call.to` their copy, but those already posted for this
    /// revision; keeps each copy as soon as it is made. `made` is when the delivery was made
    /// (its `created_at`): which of two contents of one revision is the later.
    pub(super) fn create_direct(&self, key: &str, call: &Call, made: &str) -> Sent {
        let Some(buttons) = &self.direct.key else {
            return failed("the key of Mattermost buttons is not open".into());
        };
        // Damaged: no copy is posted without buttons that work; retried, named meanwhile.
        let action_key = match buttons.get() {
            Ok(k) => k,
            Err(e) => return failed(format!("the key of Mattermost buttons: {e}")),
        };
        let action_key = &action_key;
        let bound = &call.payload["props"]["attachments"][0]["actions"][0]["integration"]
            ["context"]["baton"];
        let revision = bound["r"].as_u64().unwrap_or(1) as u32;
        let digest = bound["h"].as_str().map(str::to_string);
        // What this delivery shows: every copy kept must show the same, or it is superseded.
        let ours = Copies {
            key: key.to_string(),
            revision,
            digest: digest.clone(),
            made: Some(made.to_string()).filter(|m| !m.is_empty()),
            ..Copies::default()
        };
        let fresh = || ours.clone();
        let mut copies = match self.direct.posts.get(key) {
            Err(e) => {
                tracing::error!(error = %e, key, "a Mattermost direct-message state file is damaged");
                return failed(e.to_string());
            }
            Ok(Some(c)) if c.show(&ours) => c,
            // A later delivery's content of the same revision: this one is superseded, as a
            // late retry of an older revision is.
            Ok(Some(c)) if c.revision == revision && c.supersede(&ours) => {
                return self.superseded(key, &ours, &c);
            }
            // The same revision with other content: the workspace's folder was made again
            // and the key sent anew; the old copies' buttons are refused (other content).
            Ok(Some(c)) if c.revision == revision => fresh(),
            // A late retry of an older revision: the newer one's copies are in place, and
            // starting afresh would lose them (the decision could not update them). This
            // delivery is superseded; its buttons would be refused as revised anyway.
            Ok(Some(c)) if c.revision > revision => {
                tracing::info!(mattermost = %self.entry.name, key, revision, posted = c.revision, "a Mattermost direct post of an older revision is superseded by the newer one's copies; not posted");
                return Sent {
                    status: Some(200),
                    ..Sent::default()
                };
            }
            // A new revision: new copies (the old ones' buttons are refused as revised).
            Ok(_) => fresh(),
        };
        let bot = match self.bot_id() {
            Ok(b) => b,
            Err(sent) => return sent,
        };
        let owed: Vec<&String> = call
            .to
            .iter()
            .filter(|u| !copies.posts.contains_key(*u))
            .collect();
        for user in owed {
            // What another node or a newer delivery kept meanwhile decides this turn: a
            // place of another revision or content supersedes this delivery (going on would
            // post this revision's copy and keep it as the newer one's); a copy kept for
            // this user meanwhile is not posted again.
            match self.direct.posts.get(key) {
                Err(e) => {
                    tracing::error!(error = %e, key, "a Mattermost direct-message state file cannot be read; the rest of the copies wait, retried");
                    return failed(e.to_string());
                }
                Ok(Some(now)) if now.supersede(&ours) => return self.superseded(key, &ours, &now),
                Ok(Some(now)) if now.show(&ours) => copies = now,
                // An older revision's (or content's), replaced at this delivery's first keep.
                Ok(_) => {}
            }
            if copies.posts.contains_key(user) {
                continue;
            }
            let dm = match self.call("POST", "/channels/direct", &json!([bot, user])) {
                Ok(c) => c,
                Err(sent) => return sent,
            };
            let Some(channel) = dm["id"].as_str().filter(|c| !c.is_empty()) else {
                return failed(format!(
                    "POST /api/v4/channels/direct for {user}: the answer names no channel id"
                ));
            };
            let signer = (action_key, bot.as_str());
            let to = (user.as_str(), channel);
            if let Err(sent) = self.post_copy(key, call, signer, &ours, &mut copies, to) {
                return sent;
            }
        }
        Sent {
            status: Some(200),
            ..Sent::default()
        }
    }

    /// The answer to a delivery whose copies are superseded by `kept` (a newer revision's or
    /// a later content's): done, nothing more posted; its buttons are refused as revised.
    fn superseded(&self, key: &str, ours: &Copies, kept: &Copies) -> Sent {
        tracing::info!(mattermost = %self.entry.name, key, revision = ours.revision, posted = kept.revision, "Mattermost direct copies of a newer revision or content are kept; this delivery's are superseded, not posted");
        Sent {
            status: Some(200),
            ..Sent::default()
        }
    }

    /// Posts `user` their copy in `channel`, once: the intent is kept before the post, and
    /// a copy an earlier attempt may have made is looked for before posting again.
    fn post_copy(
        &self,
        key: &str,
        call: &Call,
        (action_key, bot): (&ActionKey, &str),
        ours: &Copies,
        copies: &mut Copies,
        (user, channel): (&str, &str),
    ) -> Result<(), Sent> {
        let tried = copies.intents.get(user).filter(|i| i.channel == channel);
        let intent = match tried.cloned() {
            Some(intent) => {
                if let Some(post) = self.find_copy(&intent, bot)? {
                    tracing::info!(mattermost = %self.entry.name, key, mattermost_user = %user, channel, post, "a direct copy an earlier attempt made was found; not posted again");
                    return self.keep_copy(key, ours, copies, (user, channel), &post);
                }
                intent
            }
            None => {
                let intent = Intent {
                    channel: channel.to_string(),
                    marker: hex::encode(rand::random::<[u8; 16]>()),
                    since_ms: crate::clock::now_ms().saturating_sub(CLOCK_MARGIN_MS),
                };
                copies.intents.insert(user.to_string(), intent.clone());
                // Not kept, not posted: a post nobody could find again would be a second
                // copy at the next retry.
                let kept = self.direct.posts.keep(copies, user).map_err(|e| {
                    tracing::error!(error = %e, key, user, "cannot keep the intent to post a Mattermost direct copy; not posted, retried");
                    failed(e.to_string())
                })?;
                // A newer revision's (or content's) copies were kept meanwhile (on another
                // node): this delivery is superseded.
                if !kept.show(ours) {
                    return Err(self.superseded(key, ours, &kept));
                }
                *copies = kept;
                intent
            }
        };
        let mut payload = sealed_for(action_key, &call.payload, channel, user)
            .ok_or_else(|| failed("the spooled Mattermost post has no button to seal".into()))?;
        payload["props"][MARKER] = json!(intent.marker);
        let answer = self.call("POST", "/posts", &payload)?;
        let Some(post) = answer["id"].as_str().filter(|id| plain_id(id)) else {
            tracing::warn!(key, user, "Mattermost answered the direct post without a usable id; its decision will not update it");
            return Ok(());
        };
        tracing::info!(mattermost = %self.entry.name, key, mattermost_user = %user, channel, post, "review posted by Mattermost direct message");
        self.keep_copy(key, ours, copies, (user, channel), post)
    }

    /// Keeps `user`'s copy `post` in place of its intent. A failed write leaves the intent
    /// kept: the next attempt finds the post by its marker. Copies of a newer revision or
    /// content kept meanwhile stop the delivery (superseded): the copy just posted is not
    /// theirs, and is not kept.
    fn keep_copy(
        &self,
        key: &str,
        ours: &Copies,
        copies: &mut Copies,
        (user, channel): (&str, &str),
        post: &str,
    ) -> Result<(), Sent> {
        copies.intents.remove(user);
        let copy = Copy {
            channel: channel.to_string(),
            post: post.to_string(),
        };
        copies.posts.insert(user.to_string(), copy);
        match self.direct.posts.keep(copies, user) {
            Ok(kept) if !kept.show(ours) => {
                tracing::warn!(mattermost = %self.entry.name, key, mattermost_user = %user, post, revision = ours.revision, kept = kept.revision, "a direct copy was posted as a newer revision's copies were kept; it is not kept (its buttons are refused as revised)");
                Err(self.superseded(key, ours, &kept))
            }
            Ok(kept) => {
                *copies = kept;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, key, user, "cannot keep the id of a Mattermost direct post; the next attempt finds it by its marker");
                Err(failed(e.to_string()))
            }
        }
    }

    /// The post an earlier attempt made for `intent`, if Mattermost has it (not deleted), made
    /// by the bot (`bot`): a post by anyone else carrying the marker is not baton's copy.
    fn find_copy(&self, intent: &Intent, bot: &str) -> Result<Option<String>, Sent> {
        let path = format!(
            "/channels/{}/posts?since={}",
            intent.channel, intent.since_ms
        );
        let list = self.call("GET", &path, &Value::Null)?;
        let posts = list["posts"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values());
        let found = posts
            .filter(|p| p["props"][MARKER] == intent.marker.as_str())
            .filter(|p| p["user_id"] == bot)
            .filter(|p| p["delete_at"].as_u64().unwrap_or(0) == 0)
            .find_map(|p| {
                p["id"]
                    .as_str()
                    .filter(|id| plain_id(id))
                    .map(str::to_string)
            });
        Ok(found)
    }

    /// Tells every copy of `key` its decision.
    pub(super) fn update_direct(&self, key: &str, payload: &Value) -> Sent {
        let copies = match self.direct.posts.get(key) {
            Err(e) => {
                tracing::error!(error = %e, key, "a Mattermost direct-message state file is damaged");
                return failed(e.to_string());
            }
            Ok(None) => return failed("the handoff's direct posts are not made yet".into()),
            Ok(Some(c)) => c,
        };
        for copy in copies.posts.values() {
            let mut p = payload.clone();
            p["id"] = json!(copy.post);
            if let Err(sent) = self.call("PUT", &format!("/posts/{}", copy.post), &p) {
                return sent;
            }
        }
        Sent {
            status: Some(200),
            ..Sent::default()
        }
    }
}

/// The post for `user` in direct channel `channel`: every button's binding bound to both and
/// sealed.
fn sealed_for(key: &ActionKey, template: &Value, channel: &str, user: &str) -> Option<Value> {
    let mut p = template.clone();
    p["channel_id"] = json!(channel);
    let actions = p["props"]["attachments"][0]["actions"].as_array_mut()?;
    for a in actions.iter_mut() {
        let mut b: Binding =
            serde_json::from_value(a["integration"]["context"]["baton"].clone()).ok()?;
        b.channel = channel.to_string();
        b.user = Some(user.to_string());
        a["integration"]["context"] = key.seal(&b);
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_kept_and_a_damaged_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let documents = Arc::new(crate::documents::InDataDir::new(dir.path()));
        let posts = DirectPosts::new(documents, "mm");
        assert!(posts.get("k-1").unwrap().is_none());
        let mut c = Copies {
            key: "k-1".into(),
            revision: 2,
            ..Copies::default()
        };
        c.posts.insert(
            "mmann".into(),
            Copy {
                channel: "dm1".into(),
                post: "p1".into(),
            },
        );
        posts.keep(&c, "mmann").unwrap();
        assert_eq!(posts.get("k-1").unwrap(), Some(c));
        std::fs::write(
            dir.path().join(posts.places.name("k-1")),
            b"{\"key\": \"k-1\", \"rev",
        )
        .unwrap();
        assert!(matches!(posts.get("k-1"), Err(StateError::Damaged { .. })));
        assert!(posts.has("k-1"));
        assert_eq!(
            std::fs::read(dir.path().join(posts.places.name("k-1"))).unwrap(),
            b"{\"key\": \"k-1\", \"rev"
        );
    }

    #[test]
    fn two_writers_of_one_handoffs_copies_lose_neither_and_an_older_revision_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let documents: Arc<dyn Documents> = Arc::new(crate::documents::InDataDir::new(dir.path()));
        // Two nodes' senders over the same documents, each with what it read before the other.
        let (here, there) = (
            DirectPosts::new(documents.clone(), "mm"),
            DirectPosts::new(documents, "mm"),
        );
        let base = Copies {
            key: "k-1".into(),
            revision: 1,
            ..Copies::default()
        };
        let copy = |post: &str| Copy {
            channel: format!("dm-{post}"),
            post: post.into(),
        };
        let (mut ann, mut bob) = (base.clone(), base.clone());
        ann.posts.insert("mmann".into(), copy("p1"));
        bob.posts.insert("mmbob".into(), copy("p2"));
        here.keep(&ann, "mmann").unwrap();
        let kept = there.keep(&bob, "mmbob").unwrap();
        assert_eq!(kept.posts.keys().collect::<Vec<_>>(), ["mmann", "mmbob"]);
        assert_eq!(here.get("k-1").unwrap(), Some(kept));
        // Revision 2's copies kept, then a late write of revision 1: nothing written.
        let mut newer = Copies {
            revision: 2,
            ..base.clone()
        };
        newer.posts.insert("mmann".into(), copy("p3"));
        here.keep(&newer, "mmann").unwrap();
        let late = there.keep(&bob, "mmbob").unwrap();
        assert_eq!(late, newer);
        assert_eq!(here.get("k-1").unwrap(), Some(newer));
    }

    /// A stand-in Mattermost server: answers each request with `answer(method, path, body)`,
    /// one connection per request.
    fn stub(
        answer: impl Fn(&str, &str, &str) -> Value + Send + 'static,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    if header.trim().is_empty() {
                        break;
                    }
                    let lower = header.to_ascii_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                log.lock().unwrap().push(format!("{method} {path}"));
                let text = answer(method, path, &body).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        (url, seen)
    }

    #[test]
    fn a_late_delivery_of_revision_1_stops_when_revision_2s_copies_are_kept_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let documents: Arc<dyn Documents> = Arc::new(crate::documents::InDataDir::new(dir.path()));
        let posts = DirectPosts::new(documents.clone(), "dm");
        // Revision 2's first copy, posted (on another node) as revision 1's first copy is
        // being posted; bob's is still owed there.
        let mut newer = Copies {
            key: "k-1".into(),
            revision: 2,
            digest: Some("d2".into()),
            ..Copies::default()
        };
        let copy = Copy {
            channel: "dm-mmann".into(),
            post: "p2ann".into(),
        };
        newer.posts.insert("mmann".into(), copy);
        let (kept_meanwhile, newer_copies) = (posts.clone(), newer.clone());
        let made = Arc::new(Mutex::new(0));
        let count = made.clone();
        let (url, seen) = stub(move |method, path, body| match (method, path) {
            ("GET", "/api/v4/users/me") => json!({ "id": "bot" }),
            ("POST", "/api/v4/channels/direct") => {
                let pair: Vec<String> = serde_json::from_str(body).unwrap();
                json!({ "id": format!("dm-{}", pair[1]) })
            }
            ("POST", "/api/v4/posts") => {
                let mut n = count.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    kept_meanwhile.keep(&newer_copies, "mmann").unwrap();
                }
                json!({ "id": format!("p1n{n}") })
            }
            other => panic!("unexpected call {other:?}"),
        });
        let entry: crate::config::Mattermost = toml::from_str(&format!(
            "name = \"dm\"\nurl = \"{url}\"\nbot_token = \"t\"\ndirect = true\n"
        ))
        .unwrap();
        let keys = crate::store::mac_keys::MacKeys::in_data_dir(dir.path());
        let direct = Direct::new(
            posts.clone(),
            Some(Arc::new(ButtonKey::new(Arc::new(keys), Box::new(|| {})))),
        );
        let posted = super::super::posted(documents, "dm");
        let sender = Sender::new(&entry, posted, direct);
        let binding = Binding {
            entry: "dm".into(),
            channel: String::new(),
            workspace: "alpha".into(),
            key: "k-1".into(),
            revision: 1,
            outcome: crate::contract::Outcome::Approved,
            digest: Some("d1".into()),
            user: None,
            expires_ms: Some(u64::MAX / 2),
        };
        let call = Call {
            method: "create_direct".into(),
            payload: json!({ "message": "review", "props": { "attachments": [{ "actions": [
                { "id": "batonapprove", "integration": { "url": "http://x", "context": { "baton": binding } } }
            ] }] } }),
            to: vec!["mmann".into(), "mmbob".into()],
        };
        let sent = sender.create_direct("k-1", &call, "2026-01-01T00:00:00.000Z");
        assert!(sent.delivered(), "superseded is done: {sent:?}");
        // Revision 2's copies are as they were kept: revision 1's copy for ann is not kept,
        // and no copy of revision 1 was posted to bob, nor kept as his revision 2 copy (which
        // revision 2's delivery would then take as posted).
        assert_eq!(posts.get("k-1").unwrap(), Some(newer));
        let calls = seen.lock().unwrap().clone();
        let made_posts = calls.iter().filter(|c| *c == "POST /api/v4/posts").count();
        assert_eq!(made_posts, 1, "{calls:?}");
    }

    #[test]
    fn copies_of_a_later_content_of_the_same_revision_are_not_replaced_by_an_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let posts = DirectPosts::new(Arc::new(crate::documents::InDataDir::new(dir.path())), "mm");
        let of = |digest: &str, made: &str, post: &str| {
            let mut c = Copies {
                key: "k-1".into(),
                revision: 1,
                digest: Some(digest.into()),
                made: Some(made.into()),
                ..Copies::default()
            };
            let copy = Copy {
                channel: "dm1".into(),
                post: post.into(),
            };
            c.posts.insert("mmann".into(), copy);
            c
        };
        let later = of("d-later", "2026-01-02T00:00:00.000Z", "p-later");
        posts.keep(&later, "mmann").unwrap();
        // The earlier content's delivery, retried late: nothing of it is kept.
        let earlier = of("d-earlier", "2026-01-01T00:00:00.000Z", "p-earlier");
        assert_eq!(posts.keep(&earlier, "mmann").unwrap(), later);
        assert_eq!(posts.get("k-1").unwrap(), Some(later));
        // A still later content (the folder made again once more) starts afresh.
        let latest = of("d-latest", "2026-01-03T00:00:00.000Z", "p-latest");
        assert_eq!(posts.keep(&latest, "mmann").unwrap(), latest);
    }
}
