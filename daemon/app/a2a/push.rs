//! The A2A push-notification config methods (v1.0 `*TaskPushNotificationConfig`, v0.3
//! `tasks/pushNotificationConfig/*`): the task's sender sets configs of it; whoever may see
//! the task reads, lists and deletes only its own. They are kept by the outbox
//! (`outbox::a2a_push`), which sends each change of the task's state to every config of the
//! task as a signed webhook: who may be told is decided here, when a config is set, as the
//! A2A SDK's own store does (authorization at registration, every config at dispatch).

use crate::app::a2a::{not_found, task_id};
use crate::app::state::Record;
use crate::app::App;
use crate::auth::Actor;
use crate::contract::a2a::rpc::{Method, RpcError, Version};
use crate::outbox::a2a_push::{Configs, PushConfig};
use serde_json::{json, Value};

impl App {
    pub(in crate::app) fn a2a_push(
        &self,
        method: Method,
        params: &Value,
        v: Version,
        actor: &Actor,
    ) -> Result<Value, RpcError> {
        // v1.0 names the task `taskId` everywhere; v0.3 `taskId` to set, `id` otherwise.
        let key = match (v, method) {
            (Version::V03, Method::PushSet) | (Version::V1, _) => task_id(params, "taskId")?,
            (Version::V03, _) => task_id(params, "id")?,
        };
        if self.a2a_own(&key, actor).is_none() {
            return Err(not_found(&key));
        }
        let configs = Configs::new(&self.config().data_dir);
        let mine = |c: &PushConfig| c.owner == name_of(actor);
        let config_id = || -> Result<String, RpcError> {
            let field = match v {
                Version::V1 => "id",
                Version::V03 => "pushNotificationConfigId",
            };
            params[field].as_str().map(String::from).ok_or_else(|| {
                RpcError::InvalidParams(format!("params.{field} (the config id) is missing"))
            })
        };
        let unknown = |id: &str| {
            RpcError::InvalidParams(format!(
                "task \"{key}\" has no push config \"{id}\" of yours: list them with ListTaskPushNotificationConfigs"
            ))
        };
        match method {
            Method::PushSet => {
                let given = match v {
                    Version::V1 => params,
                    Version::V03 => &params["pushNotificationConfig"],
                };
                let stored = self.a2a_push_store(&key, given, actor)?;
                Ok(shape(&key, &stored, v))
            }
            Method::PushGet => {
                let id = config_id()?;
                let c = configs
                    .get(&key, &id)
                    .filter(mine)
                    .ok_or_else(|| unknown(&id))?;
                Ok(shape(&key, &c, v))
            }
            Method::PushList => {
                let all: Vec<Value> = configs
                    .list(&key)
                    .iter()
                    .filter(|c| mine(c))
                    .map(|c| shape(&key, c, v))
                    .collect();
                Ok(match v {
                    Version::V1 => json!({ "configs": all }),
                    Version::V03 => json!(all),
                })
            }
            Method::PushDelete => {
                let id = config_id()?;
                if configs.get(&key, &id).filter(mine).is_none() {
                    return Err(unknown(&id));
                }
                configs.delete(&key, &id).map_err(|e| {
                    RpcError::Internal(format!("cannot delete the push config: {e}"))
                })?;
                tracing::info!(key, id, "A2A push config deleted");
                Ok(match v {
                    Version::V1 => json!({}),
                    Version::V03 => Value::Null,
                })
            }
            _ => Err(RpcError::InvalidRequest("not a push config method".into())),
        }
    }

    /// Keeps push config `given` (v1.0 or v0.3 field names: `url`, `token`, `id`,
    /// `authentication`) for task `key`, owned by `actor`.
    pub(in crate::app) fn a2a_push_store(
        &self,
        key: &str,
        given: &Value,
        actor: &Actor,
    ) -> Result<PushConfig, RpcError> {
        let bad = |m: String| Err(RpcError::InvalidParams(m));
        // Every config of a task is told each change of its state, the reviewers' comments
        // included: only the agent that sent it may ask to be told, not another agent of the
        // workspace, nor a person (who reads the task on the page).
        self.a2a_sender_only(key, actor)?;
        let url = given["url"].as_str().unwrap_or_default();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return bad(format!(
                "the push config's url must be an http:// or https:// URL, not \"{url}\""
            ));
        }
        let Some(token) = given["token"].as_str().filter(|t| !t.is_empty()) else {
            return bad("the push config needs a token: baton signs each notification with it (Standard Webhooks, HMAC-SHA256; a whsec_ secret is used as its key) and sends it as X-A2A-Notification-Token".into());
        };
        let auth = &given["authentication"];
        // v1.0: `scheme`; v0.3: `schemes` (the first is used).
        let scheme = auth["scheme"]
            .as_str()
            .or_else(|| auth["schemes"][0].as_str())
            .map(String::from);
        let id = given["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from)
            .unwrap_or_else(|| format!("push-{:016x}", rand::random::<u64>()));
        let configs = Configs::new(&self.config().data_dir);
        if let Some(other) = configs.get(key, &id).filter(|c| c.owner != name_of(actor)) {
            return bad(format!(
                "push config \"{id}\" of task \"{key}\" belongs to {}: choose another id",
                other.owner
            ));
        }
        let config = PushConfig {
            id: id.clone(),
            url: url.to_string(),
            token: token.to_string(),
            scheme,
            credentials: auth["credentials"].as_str().map(String::from),
            owner: name_of(actor).to_string(),
        };
        configs
            .put(key, config.clone())
            .map_err(|e| RpcError::InvalidParams(format!("cannot keep the push config: {e}")))?;
        tracing::info!(key, id, "A2A push config set");
        Ok(config)
    }
}

impl App {
    /// Refuses `actor` unless it acts as the sender of task `key`: the agent proven to have
    /// sent its current revision, else the one its `from_agent` names (as `Cx::upload` decides
    /// who may revise it).
    fn a2a_sender_only(&self, key: &str, actor: &Actor) -> Result<(), RpcError> {
        let ws = self.a2a_own(key, actor).ok_or_else(|| not_found(key))?;
        let (sender, displaced) = {
            let st = ws.lock();
            let rec = st.records.get(key).ok_or_else(|| not_found(key))?;
            let decision = rec.decision.as_ref().map(|d| d.decision());
            let displaced = self.a2a_displaced(&ws.workspace.name, rec, decision.as_ref(), actor);
            let cx = self.cx();
            let sender = cx
                .proven_sender(rec, &ws.workspace.name)
                .unwrap_or_else(|| rec.head().from_agent.trim().to_string());
            (sender, displaced)
        };
        // Its state would be told of bytes the caller did not send.
        if let Some(why) = displaced {
            return Err(RpcError::InvalidParams(format!(
                "no push config was set on task \"{key}\": {why}"
            )));
        }
        if crate::app::review::locks::acts_as(actor, &sender) {
            return Ok(());
        }
        tracing::warn!(key, by = name_of(actor), sender = %sender,
            "refused an A2A push config of a task its caller did not send");
        Err(RpcError::InvalidParams(format!(
            "task \"{key}\" was sent by {sender}: only its sender may set a push config on it \
             (its state and the reviewers' comments go to every config); nothing was set"
        )))
    }
}

impl crate::app::review::Cx<'_> {
    /// After revision `rec` is received: the push configs of its task whose setter is not
    /// proven to have sent it (`Cx::proven_sender`) are removed. Another writer of the share
    /// put those bytes under the key, and people now decide on them: their decision, pushed,
    /// would read as the answer to the setter's message (`a2a_displaced`; `GetTask` tells the
    /// setter its task failed). The revision's own notice is spooled before this runs.
    pub(in crate::app) fn a2a_push_revised(&self, ws: &str, rec: &Record) {
        let key = rec.meta.key.as_str();
        let configs = Configs::new(&self.config().data_dir);
        let all = configs.list(key);
        if all.is_empty() {
            return;
        }
        let proven = self.proven_sender(rec, ws);
        let sent_by = |owner: &str| {
            proven.as_deref().is_some_and(|p| {
                p == owner || p.strip_prefix(owner).is_some_and(|r| r.starts_with('/'))
            })
        };
        for c in all.iter().filter(|c| !sent_by(&c.owner)) {
            match configs.delete(key, &c.id) {
                Ok(_) => tracing::warn!(workspace = %ws, key, revision = rec.meta.revision,
                    owner = %c.owner, id = %c.id,
                    "A2A push config removed: its setter did not send the revision now in place"),
                Err(e) => {
                    tracing::error!(workspace = %ws, key, id = %c.id, error = %e,
                        "cannot remove the A2A push config of a task revised by another writer");
                    self.metrics().error("a2a_push_configs");
                }
            }
        }
    }
}

fn name_of(actor: &Actor) -> &str {
    match actor {
        Actor::Agent { name, .. } | Actor::Reviewer { name, .. } => name,
    }
}

/// A config as the caller's version shows it (credentials are never shown back).
fn shape(key: &str, c: &PushConfig, v: Version) -> Value {
    match v {
        Version::V1 => {
            let mut out = json!({ "id": c.id, "taskId": key, "url": c.url, "token": c.token });
            if let Some(s) = &c.scheme {
                out["authentication"] = json!({ "scheme": s });
            }
            out
        }
        Version::V03 => {
            let mut inner = json!({ "id": c.id, "url": c.url, "token": c.token });
            if let Some(s) = &c.scheme {
                inner["authentication"] = json!({ "schemes": [s] });
            }
            json!({ "taskId": key, "pushNotificationConfig": inner })
        }
    }
}
