//! A handoff as an A2A task (`GET /api/v1/handoffs/{key}/a2a`): the record in the store,
//! converted by `contract::a2a`, for A2A clients that poll a task.

use crate::app::App;
use crate::auth::Actor;
use crate::contract::a2a;
use serde_json::Value;

impl App {
    /// The A2A `Task` of handoff `key` (its revision in place and its decision), or `None`
    /// when there is no such handoff the actor may see.
    pub fn a2a_task(&self, key: &str, actor: &Actor) -> Option<Value> {
        let ws = self.served_for(key, actor)?;
        let st = ws.lock();
        let rec = st.records.get(key)?;
        let decision = rec.decision.as_ref().map(|d| d.decision());
        // An agent reading its own task hears, as from `GetTask`, when the bytes in place (and
        // the decision on them) are not what it sent.
        if crate::app::a2a::owns(actor, &rec.head().from_agent) {
            let (ws, v) = (&ws.workspace.name, a2a::rpc::Version::V03);
            if let Some(task) = self.a2a_displaced_task(ws, rec, decision.as_ref(), actor, v) {
                return Some(task);
            }
        }
        Some(a2a::task(key, &rec.value.value(), decision.as_ref()))
    }
}
