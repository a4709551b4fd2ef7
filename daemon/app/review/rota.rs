//! Who holds what, across workspaces: every open claim by holder (kept as claims change, so a
//! reviewer's load is counted without visiting a workspace), and each assigning route's place
//! in its round (the reviewer it assigned last), kept in `data_dir/rota.json` so a restart
//! goes on where it left off (in a cluster, in its database, so the nodes share one round).
//! Picking an assignee and reserving the handoff for them happen under one lock, so handoffs
//! arriving at once in several workspaces are spread too.

use crate::routing::AssignMode;
use crate::store::people::{Claims, People};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// An open claim: its holder, and whether the route made it (an assignment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::app) struct Held {
    pub by: String,
    pub assigned: bool,
}

/// Open claims and assignments of one reviewer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(in crate::app) struct Holding {
    pub claims: usize,
    pub assigned: usize,
}

#[derive(Default)]
struct State {
    /// (workspace, key) -> its open claim.
    held: HashMap<(String, String), Held>,
    /// Route -> the reviewer it assigned a new handoff to last.
    last: BTreeMap<String, String>,
}

pub(in crate::app) struct Rota {
    file: PathBuf,
    state: Mutex<State>,
    /// In a cluster: the routes' places, shared by the nodes (`last` is then unused).
    shared: Option<Arc<dyn People>>,
}

/// What `Rota::pick` chooses among.
pub(in crate::app) struct Choice<'a> {
    pub route: &'a str,
    pub mode: AssignMode,
    /// Every reviewer's name in `[[users]]` order: the round's order.
    pub order: &'a [String],
    /// Those who may take this handoff now.
    pub eligible: &'a [String],
    /// Start the round after this reviewer (a reassignment); `None`: after the route's last
    /// assignee (a new handoff), which then becomes the chosen one.
    pub after: Option<&'a str>,
}

impl Rota {
    pub fn open(data_dir: &Path) -> Rota {
        let file = data_dir.join("rota.json");
        let last = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Rota {
            file,
            state: Mutex::new(State {
                held: HashMap::new(),
                last,
            }),
            shared: None,
        }
    }

    /// A cluster's rota: the routes' places in their rounds are kept in its database, so
    /// the nodes go round one round together.
    pub fn shared(data_dir: &Path, people: Arc<dyn People>) -> Rota {
        Rota {
            shared: Some(people),
            ..Rota::open(data_dir)
        }
    }

    /// The reviewer `route` assigned a new handoff to last.
    fn last(&self, state: &State, route: &str) -> Option<String> {
        let Some(people) = &self.shared else {
            return state.last.get(route).cloned();
        };
        // Unreadable, the round starts over: a fair guess, not a failure.
        people.last_assigned(route).unwrap_or_else(|e| {
            tracing::warn!(route, error = %e, "cannot read the route's place in its round");
            None
        })
    }

    /// In a cluster, each reviewer's open claims in the workspaces other nodes serve (read
    /// from the database at each use, as the other nodes' claims change without telling this
    /// one); none outside a cluster, or when unreadable (the load is then this node's only).
    fn elsewhere(&self) -> HashMap<String, Claims> {
        let Some(people) = &self.shared else {
            return HashMap::new();
        };
        people.claims_elsewhere().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read the claims held on the other nodes; counting this node's only");
            HashMap::new()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes the open claim of `key` in `ws` (`None`: none holds).
    pub fn note(&self, ws: &str, key: &str, held: Option<Held>) {
        let at = (ws.to_string(), key.to_string());
        let mut state = self.lock();
        match held {
            Some(h) => state.held.insert(at, h),
            None => state.held.remove(&at),
        };
    }

    /// Forgets the claims of a workspace this daemon no longer serves.
    pub fn forget_workspace(&self, ws: &str) {
        self.lock().held.retain(|(w, _), _| w != ws);
    }

    /// The workspaces holding a handoff assigned to `name`.
    pub fn assigned_to(&self, name: &str) -> Vec<String> {
        let state = self.lock();
        let mine = state
            .held
            .iter()
            .filter(|(_, h)| h.assigned && h.by == name);
        let mut list: Vec<String> = mine.map(|((ws, _), _)| ws.clone()).collect();
        list.dedup();
        list
    }

    /// Who holds an assignment in this node's workspaces.
    pub fn assignees(&self) -> Vec<String> {
        let state = self.lock();
        let mut names: Vec<String> = state
            .held
            .values()
            .filter(|h| h.assigned)
            .map(|h| h.by.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Each holder's open claims and assignments (in a cluster, on every node's workspaces).
    pub fn holdings(&self) -> HashMap<String, Holding> {
        let elsewhere = self.elsewhere();
        let state = self.lock();
        let mut all: HashMap<String, Holding> = HashMap::new();
        for h in state.held.values() {
            let mine = all.entry(h.by.clone()).or_default();
            mine.claims += 1;
            mine.assigned += usize::from(h.assigned);
        }
        for (by, c) in elsewhere {
            let theirs = all.entry(by).or_default();
            theirs.claims += c.claims;
            theirs.assigned += c.assigned;
        }
        all
    }

    /// Chooses the assignee of `key` in `ws` and reserves it for them (the caller commits
    /// the claim, and notes it again either way). `None`: nobody is eligible.
    pub fn pick(&self, ws: &str, key: &str, choice: &Choice) -> Option<String> {
        // Claims held on the other nodes' workspaces count as much as this node's (read
        // before the lock: the round's other picks need not wait for the database).
        let elsewhere = match choice.mode {
            AssignMode::LeastLoaded => self.elsewhere(),
            AssignMode::RoundRobin => HashMap::new(),
        };
        let mut state = self.lock();
        let after = match choice.after {
            Some(a) => Some(a.to_string()),
            None => self.last(&state, choice.route),
        };
        let start = after
            .and_then(|a| choice.order.iter().position(|n| *n == a))
            .map_or(0, |i| i + 1);
        let round = choice.order[start..].iter().chain(&choice.order[..start]);
        let mut candidates = round.filter(|n| choice.eligible.contains(n));
        let chosen = match choice.mode {
            AssignMode::RoundRobin => candidates.next().cloned(),
            AssignMode::LeastLoaded => {
                let load = |name: &str| {
                    let here = state.held.values().filter(|h| h.by == name).count();
                    here + elsewhere.get(name).map_or(0, |c| c.claims)
                };
                // The first of the least loaded in the round: equals take turns.
                candidates.min_by_key(|n| load(n)).cloned()
            }
        }?;
        let at = (ws.to_string(), key.to_string());
        let held = Held {
            by: chosen.clone(),
            assigned: true,
        };
        state.held.insert(at, held);
        if choice.after.is_none() {
            match &self.shared {
                Some(people) => {
                    if let Err(e) = people.set_last_assigned(choice.route, &chosen) {
                        tracing::warn!(route = choice.route, error = %e, "cannot save the route's place in its round");
                    }
                }
                None => {
                    state.last.insert(choice.route.to_string(), chosen.clone());
                    self.save(&state.last);
                }
            }
        }
        Some(chosen)
    }

    /// Saves the round's places. Losing them only starts a round over: a warning.
    fn save(&self, last: &BTreeMap<String, String>) {
        let Ok(bytes) = serde_json::to_vec_pretty(last) else {
            return;
        };
        let kind = crate::workspace::fsync::Kind::Other;
        if let Err(e) = crate::workspace::write_atomic(&self.file, &bytes, kind) {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot save the routes' assignment rounds");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Choice, Held, Rota};
    use crate::routing::AssignMode;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_round_skips_the_ineligible_and_the_least_loaded_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let rota = Rota::open(dir.path());
        let order = names(&["a", "b", "c"]);
        let eligible = names(&["a", "c"]);
        let choice = |mode| Choice {
            route: "r",
            mode,
            order: &order,
            eligible: &eligible,
            after: None,
        };
        let rr = |k: &str| rota.pick("w", k, &choice(AssignMode::RoundRobin)).unwrap();
        assert_eq!([rr("1"), rr("2"), rr("3")], ["a", "c", "a"]);
        // The round is kept: a new rota over the same data_dir goes on after "a".
        let rota = Rota::open(dir.path());
        let c = choice(AssignMode::LeastLoaded);
        rota.note(
            "w",
            "x",
            Some(Held {
                by: "c".into(),
                assigned: false,
            }),
        );
        assert_eq!(rota.pick("w", "4", &c).unwrap(), "a", "c holds more");
        assert_eq!(rota.pick("w", "5", &c).unwrap(), "c", "equals take turns");
        assert_eq!(rota.holdings()["c"].claims, 2);
        assert_eq!(rota.assigned_to("c"), ["w"]);
    }
}
