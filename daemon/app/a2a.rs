//! baton as an A2A agent: the JSON-RPC methods over the core. `SendMessage` files the message
//! as a handoff through the same upload an agent's `PUT .../handoff` makes (every validation
//! applies, then the pipeline receives it) and answers the task once it is received;
//! `GetTask` reads it; `CancelTask` withdraws it (`Cx::withdraw`); the push-notification
//! configs are `push`'s; `ListTasks` is `list`'s, the streams (`SendStreamingMessage`,
//! `SubscribeToTask`) `stream`'s. A task is a handoff: its id is the handoff key. An agent
//! sees only its own tasks (the handoffs its token's agent sent); a person, any they may see.
//! An agent's task is pinned to the bytes it sent (`a2a_displaced`): once the revision in
//! place is not proven its, every surface answers it failed, never the decision on those bytes.
//! The shapes are `contract::a2a::v1` or `v03`, by the method name the caller used.

use crate::app::state::{Record, Served};
use crate::app::App;
use crate::auth::Actor;
use crate::contract::a2a::rpc::{Method, Request, RpcError, Version};
use crate::contract::a2a::{v03, v1};
use crate::contract::{Decision, Outcome};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod list;
pub mod push;
pub mod stream;

/// How long `SendMessage` waits for the pipeline to receive the handoff it wrote.
const RECEIVE_WAIT: Duration = Duration::from_secs(15);

/// The comment of a withdrawal asked through A2A.
const CANCELED: &str = "withdrawn by its agent (A2A CancelTask)";

impl App {
    /// Answers one A2A JSON-RPC call for `actor`: the `result`, or the A2A error. `base` is
    /// the URL the daemon is reached at, for the artifacts' download URLs.
    pub fn a2a_call(&self, req: &Request, actor: &Actor, base: &str) -> Result<Value, RpcError> {
        let answer = self.a2a_answer(req, actor, base);
        self.a2a_count(req, &answer);
        answer
    }

    /// Counts call `req` and its answer (`baton_a2a_calls_total`); logs a refusal.
    pub(in crate::app) fn a2a_count<T>(&self, req: &Request, answer: &Result<T, RpcError>) {
        let calls = &self.metrics().a2a_calls;
        calls.get_or_create(&kind(req.method.name())).inc();
        if let Err(e) = answer {
            calls.get_or_create(&kind("error")).inc();
            tracing::info!(method = req.method.name(), code = e.code(), error = %e, "A2A call refused");
        }
    }

    fn a2a_answer(&self, req: &Request, actor: &Actor, base: &str) -> Result<Value, RpcError> {
        let v = req.version;
        match req.method {
            Method::Send => {
                let task = self.a2a_send(&req.params, v, actor, base)?;
                Ok(match v {
                    Version::V1 => json!({ "task": task }),
                    Version::V03 => task,
                })
            }
            Method::List => self.a2a_list(&req.params, actor, base),
            // The web layer answers these as streams (`a2a_stream_open`).
            Method::Stream | Method::Subscribe => Err(RpcError::UnsupportedOperation(format!(
                "{} answers with a stream of Server-Sent Events: POST it with Accept: text/event-stream",
                req.method.name()
            ))),
            Method::Get => {
                let key = task_id(&req.params, "id")?;
                self.a2a_task_as(&key, actor, v, base)
                    .ok_or_else(|| not_found(&key))
            }
            Method::Cancel => {
                let key = task_id(&req.params, "id")?;
                self.a2a_cancel(&key, actor, v, base)
            }
            Method::PushSet | Method::PushGet | Method::PushList | Method::PushDelete => {
                self.a2a_push(req.method, &req.params, v, actor)
            }
        }
    }

    /// The served workspace of task `key` if the task is `actor`'s (see `owns`).
    pub(in crate::app) fn a2a_own(&self, key: &str, actor: &Actor) -> Option<Arc<Served>> {
        let ws = self.served_for(key, actor)?;
        let mine = {
            let st = ws.lock();
            owns(actor, &st.records.get(key)?.head().from_agent)
        };
        mine.then_some(ws)
    }

    /// The task of handoff `key` in `version`'s shapes, if it is `actor`'s.
    pub fn a2a_task_as(
        &self,
        key: &str,
        actor: &Actor,
        version: Version,
        base: &str,
    ) -> Option<Value> {
        let ws = self.a2a_own(key, actor)?;
        let st = ws.lock();
        let rec = st.records.get(key)?;
        let decision = rec.decision.as_ref().map(|d| d.decision());
        if let Some(task) =
            self.a2a_displaced_task(&ws.workspace.name, rec, decision.as_ref(), actor, version)
        {
            return Some(task);
        }
        let mut task = render(key, &rec.value.value(), decision.as_ref(), version, base);
        // While people decide, the status dates from the revision they are deciding on (what
        // `ListTasks` orders and filters by).
        if decision.is_none() {
            task["status"]["timestamp"] = json!(updated_at(&rec.meta));
        }
        Some(task)
    }

    /// Why the revision in place of `rec` (and `decision`, the decision on it if any) answers
    /// nothing `actor` sent, when `actor` is an agent: unless its token is proven to have sent
    /// that very revision, handoff and artifacts (`Cx::proven_sender`, what receipt recorded in
    /// data_dir of the upload; nothing read back from the workspace counts), and the decision
    /// is on those bytes (its `handoff_sha256`). Another writer of the share can put any bytes
    /// under the task's key with its `from_agent`, and people then decide on those: the agent
    /// must not hear "approved" of a message nobody approved. `None` for a person, who reads
    /// any task as the page shows it.
    pub(in crate::app) fn a2a_displaced(
        &self,
        ws: &str,
        rec: &Record,
        decision: Option<&Decision>,
        actor: &Actor,
    ) -> Option<String> {
        if matches!(actor, Actor::Reviewer { .. }) {
            return None;
        }
        let proven = self.cx().proven_sender(rec, ws);
        let mine = proven
            .as_deref()
            .is_some_and(|p| crate::app::review::locks::acts_as(actor, p));
        let digest = rec.meta.digest.as_str();
        let on_it = decision.is_none_or(|d| d.handoff_sha256.as_deref() == Some(digest));
        if mine && on_it {
            return None;
        }
        let (key, revision) = (&rec.meta.key, rec.meta.revision);
        let sent = match proven {
            _ if mine => "which you sent, but the decision is on other bytes".to_string(),
            Some(other) => format!("which agent \"{other}\" sent with its token"),
            None => "which nothing proves your token sent: its handoff.json, or an artifact's \
                     bytes, did not come through the API with your token (someone wrote them \
                     on the share)"
                .to_string(),
        };
        let why = match decision {
            Some(d) => format!(
                "revised by another writer; the decision is not about your message: {} by {} \
                 answers revision {revision} of handoff \"{key}\" (handoff_sha256 {}), {sent}. \
                 Send your message again if it still needs a decision",
                d.outcome.as_str(),
                d.by,
                d.handoff_sha256.as_deref().unwrap_or("absent"),
            ),
            None => format!(
                "revised by another writer; your message is no longer what people review: \
                 revision {revision} of handoff \"{key}\" (handoff_sha256 {digest}) is in its \
                 place, {sent}, and a decision on it will not be about your message. Send your \
                 message again (naming this task revises it with your own bytes)"
            ),
        };
        tracing::debug!(workspace = %ws, key, revision, "A2A task answered as displaced");
        Some(why)
    }

    /// The task `rec` is for `actor` in `v`'s shapes when it is no longer `actor`'s message
    /// (`a2a_displaced`): failed, with neither the bytes in place nor the decision on them.
    pub(in crate::app) fn a2a_displaced_task(
        &self,
        ws: &str,
        rec: &Record,
        decision: Option<&Decision>,
        actor: &Actor,
        v: Version,
    ) -> Option<Value> {
        let why = self.a2a_displaced(ws, rec, decision, actor)?;
        let (key, context) = (rec.meta.key.as_str(), rec.meta.task_id.as_str());
        let at = decision.map_or(updated_at(&rec.meta), |d| d.at.as_str());
        let about = json!({ "revision": rec.meta.revision, "handoff_sha256": rec.meta.digest });
        Some(match v {
            Version::V1 => v1::displaced(key, context, &why, at, about),
            Version::V03 => v03::displaced(key, context, &why, at, about),
        })
    }

    /// Files `params.message` as a handoff; the task it is, bare.
    pub(in crate::app) fn a2a_send(
        &self,
        params: &Value,
        v: Version,
        actor: &Actor,
        base: &str,
    ) -> Result<Value, RpcError> {
        let message = params
            .get("message")
            .ok_or_else(|| RpcError::InvalidParams("params.message is missing".into()))?;
        let agent = match actor {
            Actor::Agent { name, .. } | Actor::Reviewer { name, .. } => name,
        };
        let handoff = v1::handoff_from(message, agent).map_err(|e| match e {
            v1::MessageError::Invalid(m) => RpcError::InvalidParams(m),
            v1::MessageError::ContentType(m) => RpcError::ContentTypeNotSupported(m),
        })?;
        let ws = self.a2a_workspace(params, message, actor)?;
        let bytes = serde_json::to_vec_pretty(&handoff).expect("a JSON value serialises");
        // Checked here too, so the caller hears every problem now (the pipeline checks again).
        let acc = crate::contract::validate::handoff(&bytes, &self.config().limits).map_err(
            |rejected| {
                RpcError::InvalidParams(format!(
                    "the message is not a valid handoff, nothing was filed: {}",
                    serde_json::to_string(&rejected.problems).unwrap_or_default()
                ))
            },
        )?;
        let key = crate::contract::validate::handoff_key(&ws, &acc);
        // The upload files it (`review::filing`): its first receipt takes only these bytes.
        self.cx()
            .upload(&ws, crate::app::Target::Handoff, &bytes, actor)
            .map_err(|e| match e {
                crate::app::UploadError::Io(e) => {
                    RpcError::Internal(format!("cannot write the handoff, nothing was filed: {e}"))
                }
                other => RpcError::InvalidParams(other.to_string()),
            })?;
        let received = self.await_receipt(&ws, &key, &acc.digest);
        if received.is_ok() {
            // Received as a revision, its first receipt long past: nothing ends it there.
            crate::app::review::filing::end(&ws, &key);
        }
        let received = received?;
        if let Some(config) = inline_push(params, v) {
            self.a2a_push_store(&key, &config, actor)?;
        }
        tracing::info!(workspace = %ws, key, "handoff filed through A2A");
        Ok(self
            .a2a_task_as(&key, actor, v, base)
            .unwrap_or_else(|| render(&key, &received.0, received.1.as_ref(), v, base)))
    }

    /// Waits until the pipeline has received the handoff `key` with content `digest` (its
    /// value and decision), or answered it invalid.
    fn await_receipt(
        &self,
        ws: &str,
        key: &str,
        digest: &str,
    ) -> Result<(Value, Option<Decision>), RpcError> {
        let start = Instant::now();
        while start.elapsed() < RECEIVE_WAIT {
            if crate::app::review::filing::was_displaced(ws, key, digest) {
                return Err(RpcError::InvalidParams(format!(
                    "handoff \"{key}\" was replaced on the share by another file under the same id before the daemon read it: nothing was filed, and that file is not taken either; send the message again"
                )));
            }
            if let Some(served) = self.workspace(ws) {
                let st = served.lock();
                if let Some(rec) = st.records.get(key).filter(|r| r.meta.digest == digest) {
                    let d = rec.decision.as_ref().map(|d| d.decision());
                    return Ok((rec.value.value(), d));
                }
                let invalid = st.current.as_ref().and_then(|c| c.invalid.as_ref());
                let invalid = invalid.filter(|d| {
                    d.outcome == Outcome::Invalid
                        && d.handoff_key == key
                        && d.handoff_sha256.as_deref() == Some(digest)
                });
                if let Some(d) = invalid {
                    return Err(RpcError::InvalidParams(format!(
                        "the handoff is invalid, nothing is up for review: {}",
                        serde_json::to_string(&d.errors).unwrap_or_default()
                    )));
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(RpcError::Internal(format!(
            "the handoff was written to workspace \"{ws}\" but not received within {} s; ask GetTask \"{key}\" again shortly",
            RECEIVE_WAIT.as_secs()
        )))
    }

    /// The workspace a message is filed in: `metadata.workspace` (of the request or the
    /// message), else the one workspace the caller's token covers.
    fn a2a_workspace(
        &self,
        params: &Value,
        message: &Value,
        actor: &Actor,
    ) -> Result<String, RpcError> {
        let named = [params, message]
            .iter()
            .find_map(|v| v["metadata"]["workspace"].as_str());
        if let Some(name) = named {
            return Ok(name.to_string());
        }
        let mine: Vec<String> = self
            .workspaces()
            .iter()
            .map(|w| w.workspace.name.clone())
            .filter(|n| actor.can_see(n))
            .collect();
        match mine.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(RpcError::InvalidParams(
                "this token covers no workspace baton serves: nothing was filed".into(),
            )),
            many => Err(RpcError::InvalidParams(format!(
                "this token covers {} workspaces ({}): name one in params.metadata.workspace",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    fn a2a_cancel(
        &self,
        key: &str,
        actor: &Actor,
        v: Version,
        base: &str,
    ) -> Result<Value, RpcError> {
        use crate::app::DecideError;
        if self.a2a_own(key, actor).is_none() {
            return Err(not_found(key));
        }
        match self.cx().withdraw(key, actor, CANCELED) {
            Ok(_) => {}
            Err(DecideError::NotFound(_)) => return Err(not_found(key)),
            Err(DecideError::Conflict(d)) => {
                return Err(RpcError::TaskNotCancelable(format!(
                    "task \"{key}\" is decided already ({}); it cannot be canceled",
                    d.outcome.as_str()
                )))
            }
            Err(DecideError::Io(e)) => {
                return Err(RpcError::Internal(format!(
                    "cannot withdraw, nothing was changed; try again: {e}"
                )))
            }
            Err(other) => return Err(RpcError::TaskNotCancelable(other.to_string())),
        }
        self.a2a_task_as(key, actor, v, base)
            .ok_or_else(|| not_found(key))
    }
}

/// The task of handoff `key` in version `v`'s shapes.
pub(in crate::app) fn render(
    key: &str,
    handoff: &Value,
    d: Option<&Decision>,
    v: Version,
    base: &str,
) -> Value {
    match v {
        Version::V03 => v03::task(key, handoff, d),
        Version::V1 => {
            let base = base.trim_end_matches('/');
            v1::task(key, handoff, d, &|path| v1::artifact_url(base, key, path))
        }
    }
}

/// Whether a task sent by `from_agent` is `actor`'s: an agent's own (its name, or its name
/// and a worker's), any for a person (people see every handoff they may review).
pub(in crate::app) fn owns(actor: &Actor, from_agent: &str) -> bool {
    matches!(actor, Actor::Reviewer { .. })
        || crate::app::review::locks::acts_as(actor, from_agent.trim())
}

/// When the current revision of a handoff was received.
pub(in crate::app) fn updated_at(meta: &crate::app::state::Meta) -> &str {
    if meta.updated_at.is_empty() {
        &meta.received_at
    } else {
        &meta.updated_at
    }
}

fn kind(name: &str) -> crate::metrics::KindLabel {
    crate::metrics::KindLabel {
        kind: name.to_string(),
    }
}

/// A task id param (`id` or `taskId`).
pub(in crate::app) fn task_id(params: &Value, name: &str) -> Result<String, RpcError> {
    params[name]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .ok_or_else(|| RpcError::InvalidParams(format!("params.{name} (the task id) is missing")))
}

pub(in crate::app) fn not_found(key: &str) -> RpcError {
    RpcError::TaskNotFound(format!(
        "no task \"{key}\" that this token may see (a task id is a handoff key)"
    ))
}

/// The push config a `SendMessage` carries in its configuration, if any.
fn inline_push(params: &Value, v: Version) -> Option<Value> {
    let c = &params["configuration"];
    let found = match v {
        Version::V1 => &c["taskPushNotificationConfig"],
        Version::V03 => &c["pushNotificationConfig"],
    };
    found.is_object().then(|| found.clone())
}
