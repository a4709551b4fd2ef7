//! When each workspace next needs the housekeeping (a deadline, an escalation, a stall, a
//! lock's expiry, a hold to renew): a map ordered by due time, so the once-a-second tick
//! visits the workspaces that are due, not every workspace. A change of a workspace (any
//! event it logs, a workspace taken) makes it due at once; the visit then files it under its
//! next due time, computed from its state.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

#[derive(Default)]
pub(in crate::app) struct Agenda {
    due: Mutex<Due>,
}

#[derive(Default)]
struct Due {
    /// (Unix ms, workspace), earliest first.
    by_time: BTreeSet<(u64, String)>,
    /// Each workspace's entry in `by_time`.
    at: HashMap<String, u64>,
}

impl Agenda {
    /// Makes `ws` due at `ms` (Unix ms), unless it is due earlier already.
    pub(in crate::app) fn at(&self, ws: &str, ms: u64) {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        match due.at.get(ws).copied() {
            Some(earlier) if earlier <= ms => {}
            Some(later) => {
                due.by_time.remove(&(later, ws.to_string()));
                due.by_time.insert((ms, ws.to_string()));
                due.at.insert(ws.to_string(), ms);
            }
            None => {
                due.by_time.insert((ms, ws.to_string()));
                due.at.insert(ws.to_string(), ms);
            }
        }
    }

    /// Makes `ws` due at once.
    pub(in crate::app) fn now(&self, ws: &str) {
        self.at(ws, 0);
    }

    /// Takes the workspaces due by `now_ms` off the agenda.
    pub(in crate::app) fn take_due(&self, now_ms: u64) -> Vec<String> {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let mut taken = Vec::new();
        while let Some((ms, _)) = due.by_time.first() {
            if *ms > now_ms {
                break;
            }
            let (_, ws) = due.by_time.pop_first().expect("just seen");
            due.at.remove(&ws);
            taken.push(ws);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::Agenda;

    #[test]
    fn the_earliest_time_wins_and_only_due_workspaces_are_taken() {
        let agenda = Agenda::default();
        agenda.at("a", 50);
        agenda.at("b", 10);
        agenda.at("a", 20);
        agenda.at("b", 40);
        assert_eq!(agenda.take_due(5), Vec::<String>::new());
        assert_eq!(agenda.take_due(30), vec!["b".to_string(), "a".to_string()]);
        assert_eq!(agenda.take_due(u64::MAX), Vec::<String>::new());
        agenda.now("c");
        assert_eq!(agenda.take_due(0), vec!["c".to_string()]);
    }
}
