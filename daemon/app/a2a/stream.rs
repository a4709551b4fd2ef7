//! The A2A streams: `SendStreamingMessage` (v0.3 `message/stream`) files the message as
//! `SendMessage` does, `SubscribeToTask` (v0.3 `tasks/resubscribe`) names a task of the
//! caller's still waiting for people; both then follow the task. The first event is the task
//! as it is; each later one is what the daemon's event bus said changed it (a revision asks
//! for input again, a decision ends it). The last events are the decision artifact (its
//! signed receipt, v1.0) and the final status, after which the stream ends.
//!
//! Driven by the web layer: it subscribes to the event bus (`App::subscribe`) before opening,
//! so no change between the first read and the first event is missed, and hands each event
//! (or `None` when it lagged behind the bus) to `a2a_stream_next`.

use crate::app::a2a::{not_found, task_id};
use crate::app::App;
use crate::auth::Actor;
use crate::contract::a2a::rpc::{Method, Request, RpcError, Version};
use crate::contract::a2a::{v03, v1};
use crate::events::Event;
use serde_json::Value;

/// One stream's task, and what was last sent of it.
#[derive(Debug)]
pub struct TaskWatch {
    key: String,
    actor: Actor,
    version: Version,
    base: String,
    /// The status last sent: an event that leaves it as it was sends nothing.
    sent: Value,
    done: bool,
}

impl TaskWatch {
    /// The task (handoff key) followed.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether the task has ended: nothing more will be sent.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Whether `event` may change the task (`None`: events were missed, read it again).
    pub fn concerns(&self, event: Option<&Event>) -> bool {
        event.is_none_or(|e| e.key.as_deref() == Some(self.key.as_str()))
    }
}

/// Whether a task in these shapes has ended (its handoff is decided).
fn ended(task: &Value, v: Version) -> bool {
    let state = task["status"]["state"].as_str().unwrap_or_default();
    match v {
        Version::V1 => v1::terminal(state),
        Version::V03 => state != "input-required",
    }
}

impl App {
    /// Opens the stream `req` asks for (`SendStreamingMessage` or `SubscribeToTask`) for
    /// `actor`: its watch and its first events (the task; a task already ended ends the
    /// stream with it). Subscribe to the event bus before calling.
    pub fn a2a_stream_open(
        &self,
        req: &Request,
        actor: &Actor,
        base: &str,
    ) -> Result<(TaskWatch, Vec<Value>), RpcError> {
        let opened = self.a2a_open(req, actor, base);
        self.a2a_count(req, &opened);
        if let Ok((w, _)) = &opened {
            tracing::info!(
                method = req.method.name(),
                key = w.key,
                done = w.done,
                "A2A stream opened"
            );
        }
        opened
    }

    fn a2a_open(
        &self,
        req: &Request,
        actor: &Actor,
        base: &str,
    ) -> Result<(TaskWatch, Vec<Value>), RpcError> {
        let v = req.version;
        let task = match req.method {
            Method::Stream => self.a2a_send(&req.params, v, actor, base)?,
            Method::Subscribe => {
                let key = task_id(&req.params, "id")?;
                let task = self
                    .a2a_task_as(&key, actor, v, base)
                    .ok_or_else(|| not_found(&key))?;
                if ended(&task, v) {
                    return Err(RpcError::UnsupportedOperation(format!(
                        "task \"{key}\" has ended ({}): there is nothing to follow; read it with GetTask",
                        task["status"]["state"].as_str().unwrap_or_default()
                    )));
                }
                task
            }
            other => {
                return Err(RpcError::InvalidRequest(format!(
                    "{} is not a streaming method",
                    other.name()
                )))
            }
        };
        let watch = TaskWatch {
            key: task["id"].as_str().unwrap_or_default().to_string(),
            actor: actor.clone(),
            version: v,
            base: base.to_string(),
            sent: task["status"].clone(),
            done: ended(&task, v),
        };
        let first = match v {
            Version::V1 => v1::task_event(&task),
            Version::V03 => task,
        };
        Ok((watch, vec![first]))
    }

    /// The events to send after `event` (`None`: the bus was missed, read the task again):
    /// nothing when the task's status is as last sent; its new status while people decide;
    /// the decision artifact then the final status when it has ended.
    pub fn a2a_stream_next(&self, w: &mut TaskWatch, event: Option<&Event>) -> Vec<Value> {
        if w.done || !w.concerns(event) {
            return Vec::new();
        }
        let Some(task) = self.a2a_task_as(&w.key, &w.actor, w.version, &w.base) else {
            // Gone from this node (its workspace is no longer served): nothing more to say.
            w.done = true;
            tracing::info!(
                key = w.key,
                "A2A stream ended: the task is no longer served"
            );
            return Vec::new();
        };
        if task["status"] == w.sent {
            return Vec::new();
        }
        w.sent = task["status"].clone();
        w.done = ended(&task, w.version);
        let mut out = Vec::new();
        match w.version {
            Version::V1 => {
                if w.done {
                    let decision = task["artifacts"]
                        .as_array()
                        .and_then(|list| list.iter().find(|a| a["artifactId"] == "decision"));
                    out.extend(decision.map(|a| v1::artifact_update(&task, a)));
                }
                out.push(v1::status_update(&task));
            }
            Version::V03 => out.push(v03::status_update(&task, w.done)),
        }
        if w.done {
            tracing::info!(key = w.key, state = %task["status"]["state"], "A2A stream ended: the task has ended");
        }
        out
    }
}
