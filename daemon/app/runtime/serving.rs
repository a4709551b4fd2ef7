//! Which workspaces this daemon serves: the owner record it wrote in each (one daemon per
//! workspace, guarded by its life lock), the workspaces another daemon serves for now, and those that could not be
//! opened (a full descriptor table, an unreadable store). The ingest thread tries the last
//! two again every few seconds.

use crate::app::{App, Served};
use crate::workspace::Workspace;
use std::path::PathBuf;
use std::sync::Arc;

/// A workspace name taken for a load, given back when the load ends. Each folder is loaded
/// in its own lane, so two folders of one name under two roots are loaded at once: the name
/// is what makes one of them wait for the other's outcome.
pub(in crate::app) struct Loading<'a> {
    app: &'a App,
    name: String,
}

impl<'a> Loading<'a> {
    /// Takes `name`, or `None` while another folder of that name is being loaded.
    pub(in crate::app) fn take(app: &'a App, ws: &Workspace) -> Option<Loading<'a>> {
        let mut loading = app.inner.runtime.loading();
        if !loading.insert(ws.name.clone()) {
            tracing::warn!(workspace = %ws.name, root = %ws.root.display(),
                "another folder of this name is being loaded; this one is not served (workspace names must be unique across the roots)");
            return None;
        }
        Some(Loading {
            app,
            name: ws.name.clone(),
        })
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        self.app.inner.runtime.loading().remove(&self.name);
    }
}

/// A workspace that could not be opened, and why (named on `/healthz`).
#[derive(Debug, Clone)]
pub struct Unserved {
    pub ws: Workspace,
    pub error: String,
    /// Not served because another folder of its name is: where that one is served from
    /// (`None`: it was being loaded when this one was found). A name conflict, named on
    /// `/healthz` apart from the workspaces that cannot be opened; kept here so it is tried
    /// again every few seconds as they are, and cleared when its folder is renamed, removed,
    /// or served (the other one gone).
    pub name_taken_by: Option<Option<PathBuf>>,
}

/// Two folders of one workspace name under the roots: one served, the other not.
#[derive(Debug, Clone)]
pub struct NameConflict {
    pub name: String,
    /// The folder served under the name (`None`: being loaded).
    pub served: Option<PathBuf>,
    pub not_served: PathBuf,
}

impl App {
    /// Adds a workspace (see `add_workspace`); one that cannot be opened is kept on the
    /// unserved list until a later try opens it, and one not served because another folder of
    /// its name is, on that list as a name conflict until either is renamed or removed.
    pub fn serve_workspace(&self, ws: Workspace) -> anyhow::Result<Option<Arc<Served>>> {
        let result = self.add_workspace(ws.clone());
        let taken = match &result {
            Ok(None) => self.name_taken(&ws),
            _ => None,
        };
        let mut unserved = self.inner.runtime.unserved();
        match (&result, taken) {
            (Ok(None), Some(served)) => {
                let known = unserved.get(&ws.root).and_then(|u| u.name_taken_by.clone());
                let error = match &served {
                    Some(at) => format!(
                        "not served: another folder of the workspace name \"{}\" is served, from {}; workspace names must be unique across the roots: rename one of the two folders (the one renamed is served under its new name)",
                        ws.name,
                        at.display()
                    ),
                    None => format!(
                        "not served: another folder of the workspace name \"{}\" was being loaded when this one was found; workspace names must be unique across the roots: rename one of the two folders",
                        ws.name
                    ),
                };
                if known.as_ref() != Some(&served) {
                    tracing::warn!(workspace = %ws.name, root = %ws.root.display(), served = ?served,
                        "two folders of one workspace name: this one is not served (see /healthz name_conflicts); rename one of the two folders");
                }
                unserved.insert(
                    ws.root.clone(),
                    Unserved {
                        ws,
                        error,
                        name_taken_by: Some(served),
                    },
                );
            }
            (Ok(_), _) => {
                if let Some(was) = unserved.remove(&ws.root) {
                    match was.name_taken_by {
                        Some(_) => {
                            tracing::info!(workspace = %ws.name, root = %ws.root.display(), "the workspace name conflict is over (the other folder is gone or renamed)")
                        }
                        None => {
                            tracing::info!(workspace = %ws.name, "the workspace can be opened now; serving it")
                        }
                    }
                }
            }
            (Err(e), _) => {
                let error = unserved_error(&ws, e);
                if unserved.get(&ws.root).is_none_or(|u| u.error != error) {
                    tracing::error!(workspace = %ws.name, root = %ws.root.display(), %error,
                        "cannot serve the workspace; trying again every few seconds (see /healthz)");
                }
                unserved.insert(
                    ws.root.clone(),
                    Unserved {
                        ws,
                        error,
                        name_taken_by: None,
                    },
                );
            }
        }
        self.count_unserved(&unserved);
        drop(unserved);
        if let Ok(Some(served)) = &result {
            // Damage its load found is told now that its log is served, not at a round that
            // may have come before (and would keep it for the next).
            self.report_damage(Some(served));
            // Copies its load found behind the store and brought up to date: recovery, told.
            for late in served.anchors.take_found_late() {
                self.tell_late(served, late, "late_copy");
            }
        }
        result
    }

    /// Where another folder of `ws`'s name is served from, if one is (`Some(None)`: one is
    /// being loaded): `ws` is then not served for its name.
    fn name_taken(&self, ws: &Workspace) -> Option<Option<PathBuf>> {
        if let Some(served) = self.workspace(&ws.name) {
            let at = &served.workspace.root;
            return (at != &ws.root).then(|| Some(at.clone()));
        }
        let loading = self.inner.runtime.loading();
        loading.contains(&ws.name).then_some(None)
    }

    fn count_unserved(&self, unserved: &std::collections::BTreeMap<PathBuf, Unserved>) {
        let conflicts = unserved
            .values()
            .filter(|u| u.name_taken_by.is_some())
            .count();
        let metrics = self.metrics();
        metrics
            .workspaces_unserved
            .set((unserved.len() - conflicts) as i64);
        metrics.workspace_name_conflicts.set(conflicts as i64);
    }

    /// Drops a workspace from the unserved list: its folder is gone or no workspace now.
    pub fn forget_unserved(&self, root: &std::path::Path) {
        let mut unserved = self.inner.runtime.unserved();
        if let Some(was) = unserved.remove(root) {
            if was.name_taken_by.is_some() {
                tracing::info!(workspace = %was.ws.name, root = %root.display(), "the workspace name conflict is over: the folder not served was renamed or removed");
            }
            self.count_unserved(&unserved);
        }
    }

    /// The folders not served because another folder of their name is (see `Unserved`).
    pub fn name_conflicts(&self) -> Vec<NameConflict> {
        let unserved = self.inner.runtime.unserved();
        let conflicts = unserved.values().filter_map(|u| {
            let served = u.name_taken_by.clone()?;
            Some(NameConflict {
                name: u.ws.name.clone(),
                served,
                not_served: u.ws.root.clone(),
            })
        });
        conflicts.collect()
    }

    /// Workspaces that could not be opened when last tried, and those not served for their
    /// name (`name_taken_by`): both are tried again every few seconds.
    pub fn unserved_workspaces(&self) -> Vec<Unserved> {
        let unserved = self.inner.runtime.unserved();
        unserved.values().cloned().collect()
    }

    /// Records the workspace as this daemon's (see `crate::locks::take_workspace`); another
    /// daemon serving it puts the workspace on the waiting list, with a warning the first time.
    pub(in crate::app) fn own(&self, ws: &Workspace) -> bool {
        // In a cluster the lease decides: flock on a network share is not to be trusted.
        if let Some(held) = crate::app::runtime::leases::lease(self, ws) {
            let mut waiting = self.inner.runtime.waiting();
            match held {
                true => waiting.remove(&ws.root),
                false => waiting.insert(ws.root.clone(), ws.clone()),
            };
            if held {
                // No owner.lock record, but the life lock: daemon.json names it, so agents'
                // `baton submit` and `wait` can tell this daemon runs.
                let life = self
                    .inner
                    .runtime
                    .life
                    .hold_for(ws, &self.inner.registry.roots)
                    .ok();
                let mut owners = self.inner.runtime.owners();
                owners.insert(ws.root.clone(), life);
            }
            return held;
        }
        {
            let owners = self.inner.runtime.owners();
            if owners.contains_key(&ws.root) {
                return true;
            }
        }
        // Taken without holding the maps: workspaces are loaded on several threads at start,
        // and one workspace is only ever taken by one of them (or by its ingest lane).
        let taken = self
            .inner
            .runtime
            .life
            .hold_for(ws, &self.inner.registry.roots)
            .map_err(crate::locks::NotOwner::Io)
            .and_then(|life| {
                crate::locks::take_workspace(ws, &self.inner.runtime.me, &life).map(|()| life)
            });
        let mut owners = self.inner.runtime.owners();
        let mut waiting = self.inner.runtime.waiting();
        match taken {
            Ok(life) => {
                owners.insert(ws.root.clone(), Some(life));
                if waiting.remove(&ws.root).is_some() {
                    tracing::info!(workspace = %ws.name, "the other daemon released the workspace; serving it now");
                }
                true
            }
            Err(crate::locks::NotOwner::Io(e)) => {
                // Cannot tell (a read-only share, a planted link): serve, as before owner
                // locks existed, rather than leave the workspace unserved.
                tracing::warn!(workspace = %ws.name, error = %e,
                    "cannot take .baton/owner.lock; serving the workspace without it, so another daemon could serve it too");
                owners.insert(ws.root.clone(), None);
                true
            }
            Err(e) => {
                if waiting.insert(ws.root.clone(), ws.clone()).is_none() {
                    tracing::warn!(workspace = %ws.name, root = %ws.root.display(),
                        "workspace skipped: {e}; it is taken over when that daemon releases it");
                }
                false
            }
        }
    }

    /// The heartbeat of a workspace taken: at start, once loaded, and at once for one adopted
    /// while running (`baton init` under a root), so an agent's first `submit` right after `init`
    /// hears that a daemon serves it.
    pub fn beat_new(&self, ws: &Workspace) {
        crate::heartbeat::write(ws, self.started_at(), self.life_lock_of(ws));
    }

    /// The path of the life lock (relative to the workspace) that `ws`'s records name, for
    /// its `daemon.json`; `None` when it is served without one.
    pub fn life_lock_of(&self, ws: &Workspace) -> Option<String> {
        let owners = self.inner.runtime.owners();
        owners.get(&ws.root).cloned().flatten()
    }

    /// Releases the life locks (at a clean stop, once nothing is written any more): the next
    /// daemon takes the workspaces over at once.
    pub fn release_workspaces(&self) {
        self.inner.runtime.life.release();
    }

    pub(in crate::app) fn disown(&self, ws: &Workspace) {
        let mut owners = self.inner.runtime.owners();
        owners.remove(&ws.root);
    }

    /// Whether the waiting workspaces should be tried now (a lease round found leases free
    /// that were held elsewhere); asking clears it.
    pub fn retry_waiting_now(&self) -> bool {
        self.inner
            .runtime
            .retry_waiting
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    /// Workspaces another daemon served when last tried (the ingest thread tries them again).
    pub fn waiting_workspaces(&self) -> Vec<Workspace> {
        let waiting = self.inner.runtime.waiting();
        waiting.values().cloned().collect()
    }
}

/// What went wrong, where, and (for the usual cause) what to do.
fn unserved_error(ws: &Workspace, e: &anyhow::Error) -> String {
    let out_of_descriptors = e
        .chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.raw_os_error() == Some(libc::EMFILE));
    let hint = match out_of_descriptors {
        true => "; raise the open-files limit (ulimit -n, systemd LimitNOFILE=)",
        false => "",
    };
    format!("cannot open {}: {e:#}{hint}", ws.root.display())
}
