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
        Some(a2a::task(
            key,
            &rec.value.value(),
            rec.decision.as_ref().map(|d| d.decision()).as_ref(),
        ))
    }
}
