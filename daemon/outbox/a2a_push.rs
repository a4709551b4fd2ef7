//! A2A push notifications: the configs agents set on their tasks (`Configs`, one file per
//! task under `data_dir/a2a-push/`), the notification a task's change makes (`body`: an A2A
//! v1.0 `StreamResponse` with a `statusUpdate`), and the channel's transport (`Sender`): the
//! webhook sender of `[[webhooks]]`, Standard Webhooks signature keyed with the config's
//! `token`, plus `X-A2A-Notification-Token` and the config's `Authorization`, to the URL the
//! config holds when the attempt is made (a deleted config is sent no more).

use super::attempt::{Outcome, Transport};
use super::spool::Delivery;
use super::webhook;
use crate::contract::a2a::v1;
use crate::contract::Outcome as Decided;
use crate::events::{Event, EventType};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The outbox channel of A2A push notifications.
pub const CHANNEL: &str = "a2a";

/// Most configs one task keeps.
pub const MAX_PER_TASK: usize = 10;

/// One push-notification config of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushConfig {
    pub id: String,
    pub url: String,
    /// Chosen by the agent: sent as `X-A2A-Notification-Token` and the signing key.
    pub token: String,
    /// `Authorization: SCHEME CREDENTIALS` sent with each notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// The agent (token) that set it: only it reads, changes or deletes it.
    pub owner: String,
}

/// The configs of every task, in `data_dir/a2a-push/<key>.json`.
#[derive(Debug, Clone)]
pub struct Configs {
    dir: PathBuf,
}

/// One writer at a time (a read-modify-write of a task's file).
static WRITING: Mutex<()> = Mutex::new(());

impl Configs {
    pub fn new(data_dir: &Path) -> Configs {
        Configs {
            dir: data_dir.join("a2a-push"),
        }
    }

    fn file(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", crate::workspace::key_dir_name(key)))
    }

    /// The configs of task `key` (none when it has no file, or an unreadable one).
    pub fn list(&self, key: &str) -> Vec<PushConfig> {
        std::fs::read(self.file(key))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn get(&self, key: &str, id: &str) -> Option<PushConfig> {
        self.list(key).into_iter().find(|c| c.id == id)
    }

    /// Adds `config` to task `key`, replacing one of the same id.
    pub fn put(&self, key: &str, config: PushConfig) -> io::Result<()> {
        let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.list(key);
        all.retain(|c| c.id != config.id);
        if all.len() >= MAX_PER_TASK {
            return Err(io::Error::other(format!(
                "task \"{key}\" has {MAX_PER_TASK} push configs already: delete one first"
            )));
        }
        all.push(config);
        self.write(key, &all)
    }

    /// Removes config `id` of task `key`; whether there was one.
    pub fn delete(&self, key: &str, id: &str) -> io::Result<bool> {
        let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        let mut all = self.list(key);
        let before = all.len();
        all.retain(|c| c.id != id);
        if all.len() == before {
            return Ok(false);
        }
        self.write(key, &all)?;
        Ok(true)
    }

    /// Removes every config of task `key`: a new record under that key (a workspace folder
    /// made again, its records lost) is another task, which its configs' setters never sent.
    /// Whether there were any.
    pub fn clear(&self, key: &str) -> io::Result<bool> {
        let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
        if self.list(key).is_empty() {
            return Ok(false);
        }
        self.write(key, &[])?;
        Ok(true)
    }

    fn write(&self, key: &str, all: &[PushConfig]) -> io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.file(key);
        if all.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(all)?)?;
        std::fs::rename(&tmp, &path)
    }
}

/// The notification of `event` for task `event.key` (an A2A `StreamResponse` holding a
/// `TaskStatusUpdateEvent`), or `None` for an event that does not change the task's state:
/// a decision ends it, a revision asks for input again.
pub fn body(event: &Event) -> Option<String> {
    let key = event.key.as_deref()?;
    let context = event.data["task_id"].as_str().unwrap_or(key);
    let (state, text) = match event.kind {
        EventType::HandoffDecided => {
            let outcome: Decided = serde_json::from_value(event.data["outcome"].clone()).ok()?;
            let by = event.data["by"].as_str().unwrap_or("someone");
            let mut text = format!("{} by {by}", outcome.as_str());
            if let Some(c) = event.data["comment"].as_str() {
                text.push_str(&format!(": {c}"));
            }
            (v1::state_of(outcome), text)
        }
        EventType::HandoffRevised => (
            "TASK_STATE_INPUT_REQUIRED",
            "revised: waiting for a person to decide".to_string(),
        ),
        _ => return None,
    };
    let update = json!({ "statusUpdate": {
        "taskId": key, "contextId": context,
        "status": {
            "state": state, "timestamp": event.at,
            "message": { "messageId": format!("{key}:{}", event.at), "role": "ROLE_AGENT",
                "taskId": key, "contextId": context, "parts": [{ "text": text }] },
        },
        "metadata": { "baton": { "event": event.kind.as_str(), "workspace": event.workspace } },
    } });
    Some(update.to_string())
}

/// Whether a config set by agent `owner` hears `event`: a decision only when the daemon proved
/// `owner` sent the revision decided (its `sender`, `NAME` or a worker `NAME/WORKER`). A config
/// can outlive another writer's revision of its task (one whose commit's outcome was unknown,
/// a crash before the configs were pruned, another node's receipt): it must never hear
/// "approved" of bytes its agent did not send. A decision that names no sender (none proven,
/// or logged by an older daemon) is told to no config.
fn told_to(event: &Event, owner: &str) -> bool {
    if event.kind != EventType::HandoffDecided {
        return true;
    }
    let sender = event.data["sender"].as_str().unwrap_or_default();
    !owner.is_empty()
        && (sender == owner
            || sender
                .strip_prefix(owner)
                .is_some_and(|worker| worker.starts_with('/')))
}

impl super::Outbox {
    /// The push notifications `event` owes: one per config of its task, to that config.
    pub(super) fn a2a_deliveries(&self, event: &Event, origin: &str) -> Vec<Delivery> {
        let Some(key) = event.key.as_deref() else {
            return Vec::new();
        };
        let configs: Vec<PushConfig> = (self.a2a.list(key).into_iter())
            .filter(|c| told_to(event, &c.owner))
            .collect();
        let Some(body) = configs.first().and(body(event)) else {
            return Vec::new();
        };
        configs
            .into_iter()
            .map(|c| {
                let mut d = self.make(event, origin, CHANNEL, body.clone());
                // One id per config, the same for the event however often it is spooled.
                d.id = super::delivery_id(origin, &format!("{CHANNEL}:{}", c.id));
                d.to = Some(c.id);
                d
            })
            .collect()
    }
}

/// The transport of the `a2a` channel: each delivery names its task (`key`) and config
/// (`to`); the config is read when the attempt is made.
pub struct Sender {
    configs: Configs,
    allow_private: bool,
}

impl Sender {
    pub fn new(data_dir: &Path, allow_private: bool) -> Sender {
        Sender {
            configs: Configs::new(data_dir),
            allow_private,
        }
    }
}

impl Transport for Sender {
    fn send(&self, d: &Delivery) -> Outcome {
        let found = d
            .key
            .as_deref()
            .zip(d.to.as_deref())
            .and_then(|(key, id)| self.configs.get(key, id));
        let Some(c) = found else {
            return Outcome {
                error: Some("the push config was deleted".into()),
                permanent: true,
                ..Outcome::default()
            };
        };
        let mut headers = vec![("X-A2A-Notification-Token".to_string(), c.token.clone())];
        if let (Some(scheme), Some(credentials)) = (&c.scheme, &c.credentials) {
            headers.push(("Authorization".into(), format!("{scheme} {credentials}")));
        }
        let key = super::sign::Key::of_token(&c.token);
        webhook::Sender::new(&c.url, key, self.allow_private)
            .with_headers(headers)
            .send(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_is_a_status_update_and_a_claim_is_nothing() {
        let e = Event::new(
            EventType::HandoffDecided,
            "alpha",
            Some("k1"),
            json!({"task_id": "t", "outcome": "rejected", "by": "rita", "comment": "no"}),
        );
        let b: serde_json::Value = serde_json::from_str(&body(&e).unwrap()).unwrap();
        assert_eq!(b["statusUpdate"]["status"]["state"], "TASK_STATE_REJECTED");
        assert_eq!(
            b["statusUpdate"]["status"]["message"]["parts"][0]["text"],
            "rejected by rita: no"
        );
        let claim = Event::new(EventType::HandoffClaimed, "alpha", Some("k1"), json!({}));
        assert_eq!(body(&claim), None);
    }

    #[test]
    fn a_decision_is_told_only_to_configs_of_the_agent_proven_to_have_sent_it() {
        let decided = |sender: serde_json::Value| {
            let data =
                json!({"task_id": "t", "outcome": "approved", "by": "rita", "sender": sender});
            Event::new(EventType::HandoffDecided, "alpha", Some("k1"), data)
        };
        assert!(told_to(&decided(json!("alice")), "alice"));
        assert!(told_to(&decided(json!("alice/w1")), "alice"));
        assert!(!told_to(&decided(json!("alicea")), "alice"));
        assert!(!told_to(&decided(json!("bob")), "alice"));
        assert!(!told_to(&decided(json!(null)), "alice"));
        assert!(!told_to(&decided(json!("")), ""));
        let revised = Event::new(EventType::HandoffRevised, "alpha", Some("k1"), json!({}));
        assert!(told_to(&revised, "alice"));
    }

    #[test]
    fn configs_are_kept_per_task_and_replaced_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let c = Configs::new(dir.path());
        let one = PushConfig {
            id: "a".into(),
            url: "http://x".into(),
            token: "t".into(),
            scheme: None,
            credentials: None,
            owner: "bot".into(),
        };
        c.put("k", one.clone()).unwrap();
        c.put(
            "k",
            PushConfig {
                url: "http://y".into(),
                ..one.clone()
            },
        )
        .unwrap();
        assert_eq!(c.list("k").len(), 1);
        assert_eq!(c.get("k", "a").unwrap().url, "http://y");
        assert!(c.delete("k", "a").unwrap());
        assert!(c.list("k").is_empty());
    }
}
