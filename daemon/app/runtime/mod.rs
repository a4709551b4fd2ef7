//! Keeping the daemon going: loading each workspace's state at start (`load`, `recover`,
//! `published_copies`, and their fingerprints kept current while running: `copies_memo`; in a cluster, looked at while served: `copies_sweep`), which workspaces this daemon serves (`serving`, `leases` in a cluster,
//! `group_modes`, `moves`: a workspace whose folder moved keeps its records), the housekeeping driven by due times (`agenda`, `housekeeping`), the
//! outbox's workers (`notify`) and the mail's action links (`links`), the tamper alerts operators see (`alerts`), the audit logs whose place is taken (`audit_blocked`)
//! and the audit logs read again in the background (`reverify`).

pub(in crate::app) mod agenda;
pub(in crate::app) mod alerts;
pub(in crate::app) mod audit_blocked;
pub(in crate::app) mod buttons;
pub(in crate::app) mod canaries;
pub(in crate::app) mod chat;
pub(in crate::app) mod chat_links;
pub(in crate::app) mod copies_memo;
pub(in crate::app) mod copies_sweep;
pub(in crate::app) mod digest_cadence;
pub(in crate::app) mod digest_slack;
pub(in crate::app) mod digests;
pub(in crate::app) mod group_modes;
pub(in crate::app) mod housekeeping;
pub(in crate::app) mod leases;
pub(in crate::app) mod links;
pub(in crate::app) mod load;
pub(in crate::app) mod mattermost;
pub(in crate::app) mod moves;
pub(in crate::app) mod notify;
pub(in crate::app) mod passkeys;
pub(in crate::app) mod published_copies;
pub(in crate::app) mod push;
pub(in crate::app) mod recover;
pub(in crate::app) mod removals;
pub(in crate::app) mod reverify;
pub(in crate::app) mod serving;
pub(in crate::app) mod takeover;

use crate::workspace::Workspace;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Which workspaces this daemon serves and why not others, whether it is ready, and what it
/// must tell operators.
pub(in crate::app) struct Runtime {
    /// This daemon, as written into the `.baton/owner.lock` of each workspace it serves.
    pub me: crate::locks::Owner,
    /// The life locks held (one per place workspaces live): the workspaces recorded as this
    /// daemon's are its own while they are held.
    pub life: crate::locks::life::Life,
    /// The workspaces recorded as this daemon's -> the path of the life lock (relative to
    /// the workspace) their records name; `None`: served without a record (see `own`).
    pub owners: Mutex<HashMap<PathBuf, Option<String>>>,
    /// Workspaces another daemon serves, tried again every few seconds.
    pub waiting: Mutex<BTreeMap<PathBuf, Workspace>>,
    /// Set by a lease round that found leases held elsewhere free now (expired or given up):
    /// the ingest thread tries the waiting workspaces at once rather than at its next retry,
    /// so a dead node's workspaces are taken as soon as a round sees their leases expired.
    pub retry_waiting: AtomicBool,
    /// The names of the workspaces being loaded now (see `serving::Loading`).
    pub loading: Mutex<std::collections::HashSet<String>>,
    /// Workspaces that could not be opened (see `serving`), tried again every few seconds.
    pub unserved: Mutex<BTreeMap<PathBuf, serving::Unserved>>,
    /// Set once the start-up scan has processed every workspace.
    pub ready: AtomicBool,
    /// Set once the audit logs' re-verify has started (at ready, see `reverify`).
    pub reverify: AtomicBool,
    /// The workspaces whose published copies were rewritten since their fingerprints were
    /// kept (see `copies_memo`).
    pub copies: std::sync::Arc<crate::store::Changed>,
    /// The look at clustered workspaces' record folders while served (see `copies_sweep`).
    pub sweep: copies_sweep::Sweeps,
    /// Why the daemon can no longer do its job (e.g. the ingest thread died), if it cannot.
    pub failing: OnceLock<String>,
    /// Reviewers' digests made and looked at (see `digests`).
    pub digests: digests::Digests,
    /// Store damage found for a workspace not served yet (found at its load, before it is in
    /// the registry), by store tag: told once it is (see `housekeeping::report_damage`).
    pub untold_damage: Mutex<BTreeMap<String, Vec<crate::store::Damage>>>,
}

impl Runtime {
    pub fn new() -> Runtime {
        let host = crate::host::hostname();
        Runtime {
            life: crate::locks::life::Life::new(&host, std::process::id()),
            me: crate::locks::Owner {
                host,
                pid: std::process::id(),
                started_at: crate::clock::now_rfc3339(),
                lock: None,
            },
            owners: Mutex::default(),
            waiting: Mutex::default(),
            retry_waiting: AtomicBool::new(false),
            loading: Mutex::default(),
            unserved: Mutex::default(),
            ready: AtomicBool::new(false),
            reverify: AtomicBool::new(false),
            copies: Default::default(),
            sweep: Default::default(),
            failing: OnceLock::new(),
            digests: Default::default(),
            untold_damage: Mutex::default(),
        }
    }
}

/// The maps behind their locks. A holder never panics mid-change, so a poisoned lock still
/// guards whole entries.
impl Runtime {
    pub fn owners(&self) -> MutexGuard<'_, HashMap<PathBuf, Option<String>>> {
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn waiting(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Workspace>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn loading(&self) -> MutexGuard<'_, std::collections::HashSet<String>> {
        self.loading.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn unserved(&self) -> MutexGuard<'_, BTreeMap<PathBuf, serving::Unserved>> {
        self.unserved.lock().unwrap_or_else(|e| e.into_inner())
    }
}
