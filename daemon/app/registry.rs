//! The workspaces this daemon serves, by name and by root, and every accepted handoff key's
//! workspace (keys are unique across the daemon).

use crate::app::state::Served;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub(in crate::app) struct Registry {
    pub workspaces: RwLock<BTreeMap<String, Arc<Served>>>,
    pub by_root: RwLock<HashMap<PathBuf, Arc<Served>>>,
    /// The places workspaces live (`workspaces` in the configuration, resolved).
    pub roots: Vec<PathBuf>,
    /// Every accepted key -> its workspace (or canary place, by its registry name).
    pub keys: Mutex<HashMap<String, String>>,
    /// Canary places by registry name: found by `owner` (so their keys resolve like any
    /// other), never by `get`, `all` or `pick`: nothing that names a workspace (a URL, an
    /// agent's upload, a lock) reaches one, and nothing that walks the workspaces (an
    /// export, a flush of what is owed) meets them unasked.
    pub places: RwLock<BTreeMap<String, Arc<Served>>>,
    /// Keys of handoffs whose workspace's folder was lost while running (see
    /// `runtime::removals`) -> why they cannot be decided, for the refusal.
    pub lost: Mutex<HashMap<String, String>>,
    /// Those of `lost` that were pending when the folder went: a reviewer may still be
    /// reading one, so no other folder may take its key while the daemon runs (see
    /// `review::ingest::reserve_key`).
    pub lost_pending: Mutex<std::collections::HashSet<String>>,
}

impl Registry {
    pub fn new(roots: Vec<PathBuf>) -> Registry {
        Registry {
            workspaces: RwLock::default(),
            by_root: RwLock::default(),
            roots,
            keys: Mutex::default(),
            places: RwLock::default(),
            lost: Mutex::default(),
            lost_pending: Mutex::default(),
        }
    }
}

impl Registry {
    pub fn all(&self) -> Vec<Arc<Served>> {
        let all = self.workspaces.read().expect("lock holders never panic");
        all.values().cloned().collect()
    }

    /// `pick` of every workspace served, where it gives one; under the read lock, without a
    /// copy of the list (the once-a-second anchor flush asks all 10,000 and picks few).
    pub fn pick<T>(&self, pick: impl FnMut(&Arc<Served>) -> Option<T>) -> Vec<T> {
        let all = self.workspaces.read().expect("lock holders never panic");
        all.values().filter_map(pick).collect()
    }

    /// How many workspaces are served. They are only ever added, so a reader that listed
    /// them knows from this alone whether its list is still whole.
    pub fn count(&self) -> usize {
        self.workspaces
            .read()
            .expect("lock holders never panic")
            .len()
    }

    /// The workspace named `name`; never a canary place, though `glob` patterns let an
    /// agent's `*` match its `/` (an agent could otherwise write into a place's inbox or read
    /// its approved folder by naming it).
    pub fn get(&self, name: &str) -> Option<Arc<Served>> {
        let all = self.workspaces.read().expect("lock holders never panic");
        all.get(name).cloned()
    }

    /// The workspace or canary place the key map files a key under (`name` from `keys`
    /// only): the one way to a place, for its handoffs' pages and decisions, which check
    /// `Served::seen_by`.
    pub fn owner(&self, name: &str) -> Option<Arc<Served>> {
        self.get(name).or_else(|| self.place(name))
    }

    /// The canary place of registry name `name`.
    pub fn place(&self, name: &str) -> Option<Arc<Served>> {
        let places = self.places.read().expect("lock holders never panic");
        places.get(name).cloned()
    }

    /// Every canary place.
    pub fn places(&self) -> Vec<Arc<Served>> {
        let places = self.places.read().expect("lock holders never panic");
        places.values().cloned().collect()
    }

    /// Adds a loaded canary place (its records' keys noted first, so pages find them).
    pub fn insert_place(&self, place: Arc<Served>) {
        let name = place.registry_name().to_string();
        self.claim_keys(&name, place.lock().records.keys());
        let mut places = self.places.write().expect("lock holders never panic");
        places.insert(name, place);
    }

    /// The workspace whose root is `root` exactly.
    pub fn at(&self, root: &Path) -> Option<Arc<Served>> {
        let all = self.by_root.read().expect("lock holders never panic");
        all.get(root).cloned()
    }

    pub fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes the keys recorded in `workspace`. Records come from the store, so a key in two
    /// workspaces is the operator's doing (two data_dir copies merged), never an agent's: the
    /// first keeps it.
    pub fn claim_keys<'a>(&self, workspace: &str, keys: impl Iterator<Item = &'a String>) {
        let mut known = self.keys();
        for key in keys {
            match known.get(key) {
                Some(owner) => tracing::warn!(
                    key, workspace, owner = %owner,
                    "key recorded in two workspaces; the API serves the first"
                ),
                None => {
                    known.insert(key.clone(), workspace.to_string());
                }
            }
        }
    }

    /// Adds a loaded workspace and, before anyone can look it up by name, files it where
    /// readers find its handoffs (`then`): so a page never lists a key whose workspace it
    /// cannot find. `then` is told how many are served now, under the lock, so workspaces
    /// loaded side by side report their counts in order (the last one told is the largest).
    pub fn insert(&self, served: Arc<Served>, then: impl FnOnce(usize)) {
        let ws = &served.workspace;
        let mut by_root = self.by_root.write().expect("lock holders never panic");
        by_root.insert(ws.root.clone(), served.clone());
        drop(by_root);
        let mut all = self.workspaces.write().expect("lock holders never panic");
        all.insert(ws.name.clone(), served.clone());
        then(all.len());
    }
}
