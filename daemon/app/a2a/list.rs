//! `ListTasks` (v1.0): the caller's own tasks (see `a2a::owns`), newest status first, with
//! the filters and paging a2a-sdk 1.x declares (`contextId`, `status`,
//! `statusTimestampAfter`, `pageSize` 1-100 (50 when unset), `pageToken`,
//! `includeArtifacts`). Tasks carry no message history, so `historyLength` changes nothing.
//! The page token names the last task of the page (its status time and id), so it stays
//! good when tasks are added or decided meanwhile.

use crate::app::a2a::{owns, updated_at};
use crate::app::App;
use crate::auth::Actor;
use crate::contract::a2a::rpc::{RpcError, Version};
use crate::contract::a2a::v1;
use base64::Engine;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 100;

/// Where a task sorts: its status time (unix ns), then its id; newest first.
type Place = (i128, String);

/// What a `ListTasks` call asks for.
struct Filter {
    context: Option<String>,
    state: Option<&'static str>,
    after: Option<i128>,
    size: usize,
    from: Option<Place>,
    artifacts: bool,
}

fn nanos(at: &str) -> Option<i128> {
    OffsetDateTime::parse(at, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos())
}

fn token_of(place: &Place) -> String {
    let text = format!("{}:{}", place.0, place.1);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn place_of(token: &str) -> Option<Place> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (at, key) = text.split_once(':')?;
    Some((at.parse().ok()?, key.to_string()))
}

fn filter(params: &Value) -> Result<Filter, RpcError> {
    let bad = |m: String| Err(RpcError::InvalidParams(m));
    let state = match params.get("status") {
        None | Some(Value::Null) => None,
        Some(given) => match v1::state_named(given) {
            Some("TASK_STATE_UNSPECIFIED") => None,
            Some(s) => Some(s),
            None => {
                return bad(format!(
                    "params.status {given} is not a TaskState: TASK_STATE_INPUT_REQUIRED, TASK_STATE_COMPLETED, TASK_STATE_REJECTED, TASK_STATE_CANCELED or TASK_STATE_FAILED"
                ))
            }
        },
    };
    let after = match params["statusTimestampAfter"].as_str() {
        None => None,
        Some(at) => match nanos(at) {
            Some(n) => Some(n),
            None => {
                return bad(format!(
                    "params.statusTimestampAfter \"{at}\" is not an RFC 3339 time such as 2026-01-31T09:00:00Z"
                ))
            }
        },
    };
    let size = match &params["pageSize"] {
        Value::Null => DEFAULT_PAGE,
        given => match given.as_u64() {
            Some(0) => DEFAULT_PAGE,
            Some(n) if n as usize <= MAX_PAGE => n as usize,
            _ => {
                return bad(format!(
                    "params.pageSize {given} is out of range: ask for 1 to {MAX_PAGE} tasks a page"
                ))
            }
        },
    };
    let from = match params["pageToken"].as_str().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => match place_of(t) {
            Some(p) => Some(p),
            None => {
                return bad(format!(
                "params.pageToken \"{t}\" is not a token this daemon gave: pass the nextPageToken of the page before, or none for the first page"
            ))
            }
        },
    };
    Ok(Filter {
        context: params["contextId"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(String::from),
        state,
        after,
        size,
        from,
        artifacts: params["includeArtifacts"].as_bool().unwrap_or(false),
    })
}

impl App {
    /// Answers `ListTasks` for `actor`.
    pub(in crate::app) fn a2a_list(
        &self,
        params: &Value,
        actor: &Actor,
        base: &str,
    ) -> Result<Value, RpcError> {
        let f = filter(params)?;
        // What filters and orders a task is read from the records' kept fields; only the
        // page's tasks are rendered whole.
        let mut found: Vec<Place> = Vec::new();
        for ws in self.workspaces().iter().filter(|ws| ws.seen_by(actor)) {
            let st = ws.lock();
            for (key, rec) in &st.records {
                if f.context.as_deref().is_some_and(|c| c != rec.meta.task_id) {
                    continue;
                }
                if !owns(actor, &rec.head().from_agent) {
                    continue;
                }
                // As `a2a_task_as` renders it: failed for an agent whose message it no longer
                // is (the decision parsed only for an agent, whose own tasks are few).
                let decision = match actor {
                    Actor::Agent { .. } => rec.decision.as_ref().map(|d| d.decision()),
                    Actor::Reviewer { .. } => None,
                };
                let displaced = self
                    .a2a_displaced(&ws.workspace.name, rec, decision.as_ref(), actor)
                    .is_some();
                let state = match &rec.decision {
                    _ if displaced => "TASK_STATE_FAILED",
                    Some(d) => v1::state_of(d.outcome),
                    None => v1::state(None),
                };
                if f.state.is_some_and(|s| s != state) {
                    continue;
                }
                let at = match &rec.decision {
                    Some(d) => nanos(&d.at),
                    None => nanos(updated_at(&rec.meta)),
                }
                .unwrap_or(0);
                if f.after.is_some_and(|after| at < after) {
                    continue;
                }
                found.push((at, key.clone()));
            }
        }
        found.sort_by(|a, b| b.cmp(a));
        let total = found.len();
        let start = match &f.from {
            Some(from) => found.partition_point(|p| p >= from),
            None => 0,
        };
        let end = (start + f.size).min(total);
        let next = if end < total {
            token_of(&found[end - 1])
        } else {
            String::new()
        };
        let tasks: Vec<Value> = found[start.min(end)..end]
            .iter()
            .filter_map(|(_, key)| {
                let mut task = self.a2a_task_as(key, actor, Version::V1, base)?;
                if !f.artifacts {
                    if let Some(t) = task.as_object_mut() {
                        t.remove("artifacts");
                    }
                }
                Some(task)
            })
            .collect();
        Ok(json!({
            "tasks": tasks, "nextPageToken": next, "pageSize": f.size, "totalSize": total,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_names_the_place_it_was_given_for() {
        let p = (1_790_000_000_123_000_000, "deploy-2291:1".to_string());
        assert_eq!(place_of(&token_of(&p)), Some(p));
        assert_eq!(place_of("not a token"), None);
    }

    #[test]
    fn filters_out_of_range_are_refused_with_what_to_send() {
        let e = |p: Value| filter(&p).err().map(|e| e.code());
        assert_eq!(e(json!({"pageSize": 101})), Some(-32602));
        assert_eq!(e(json!({"status": "TASK_STATE_DONE"})), Some(-32602));
        assert_eq!(
            e(json!({"statusTimestampAfter": "yesterday"})),
            Some(-32602)
        );
        let f = filter(&json!({"status": 6, "pageSize": 0})).unwrap();
        assert_eq!((f.state, f.size), (Some("TASK_STATE_INPUT_REQUIRED"), 50));
    }
}
