//! The answers earlier revisions of a handoff got (after `changes_requested` the handoff is
//! revised and its decision kept as `decision-rev-N.json` in the store): what the reviewer
//! asked last time, with its edits, for the handoff page's history.

use crate::app::review::records::old_decision_file;
use crate::app::runtime::load::read_store;
use crate::app::App;
use crate::auth::Actor;
use crate::contract::Decision;
use crate::store::Store;

impl App {
    /// `(revision, decision)` of every earlier revision of `key` that was answered, oldest
    /// first; empty for a key the actor may not see.
    pub fn earlier_answers(&self, key: &str, actor: &Actor) -> Vec<(u32, Decision)> {
        let Some(ws) = self.ws_of_key(key).filter(|ws| ws.seen_by(actor)) else {
            return Vec::new();
        };
        let revision = match ws.lock().records.get(key) {
            Some(rec) => rec.meta.revision,
            None => return Vec::new(),
        };
        (1..revision)
            .filter_map(|n| {
                let path = Store::record(key, &old_decision_file(n));
                read_store::<Decision>(&ws.store, &path).map(|d| (n, d))
            })
            .collect()
    }
}
