//! What a worker does with a job: the file work of ingest (reads, validation, the store, the
//! audit log), off the dispatcher. What the dispatcher must hear back (a file still being
//! written, a failure to retry) goes to it as a `Report`.

use super::pool;
use super::watches::Watches;
use super::Item;
use crate::app::App;
use crate::intake::scan;
use crate::workspace::{self, Workspace, CHECKPOINTS_DIR};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One piece of work for a workspace (or a folder that may become one).
#[derive(Debug)]
pub(super) struct Job {
    pub item: Item,
    /// When the change was first seen (the latency metric counts from here).
    pub seen: Instant,
    /// A rename put the file in place: complete, and processed even if its bytes are the ones
    /// seen last (the agent may have fixed the files it names).
    pub renamed: bool,
}

impl pool::Job for Job {
    type Lane = PathBuf;

    fn lane(&self) -> PathBuf {
        self.item.lane()
    }

    fn absorb(&mut self, other: Job) -> Option<Job> {
        if other.item != self.item {
            return Some(other);
        }
        self.seen = self.seen.min(other.seen);
        self.renamed |= other.renamed;
        None
    }
}

/// What the dispatcher has to hear of a job.
#[derive(Debug)]
pub(super) enum Report {
    /// Done: any backoff it had is over.
    Done(Item),
    /// It could not be done (a read or write failed, an event could not be logged): again
    /// after a backoff.
    Failed(Job),
    /// Its file is still being written: look again after this wait.
    Young(Job, Duration),
    /// Folders to look at, each in its own lane (see `Item::Roots`).
    Found(Vec<Item>),
}

pub(super) struct Worker {
    pub app: App,
    pub watches: Arc<Watches>,
    pub reports: Sender<Report>,
}

impl Worker {
    pub fn run(&self, job: Job) {
        let settle = self.app.config().settle;
        if !job.renamed {
            // Events can coalesce: trust the file's own mtime before calling it settled.
            if let Some(wait) = path_of(&job.item).and_then(|p| scan::young(&p, settle)) {
                return self.report(Report::Young(job, wait));
            }
        }
        match &job.item {
            Item::Handoff(root) => {
                let Some(ws) = self.app.workspace_at(root) else {
                    return;
                };
                match self
                    .app
                    .cx()
                    .reconcile_handoff(&ws, Some(job.seen), job.renamed)
                {
                    true => self.report(Report::Done(job.item)),
                    false => self.report(Report::Failed(job)),
                }
            }
            Item::Checkpoint(root, file) => {
                if let Some(ws) = self.app.workspace_at(root) {
                    self.app.cx().reconcile_checkpoint(&ws, file);
                }
            }
            Item::Checkpoints(root) => {
                // Made after start-up: watch it now and catch up on what is inside.
                let Some(ws) = self.app.workspace_at(root) else {
                    return;
                };
                if std::fs::symlink_metadata(ws.workspace.checkpoints_dir())
                    .is_ok_and(|m| m.is_dir())
                {
                    self.watches.add(&ws.workspace.checkpoints_dir());
                    self.app.cx().reconcile_checkpoints(&ws);
                }
            }
            Item::CatchUp(root) => {
                if let Some(ws) = self.app.workspace_at(root) {
                    let wait = scan::catch_up(&self.app, &ws);
                    self.young_handoff(root, wait);
                    // The reconcile also checks approved work, the audit log and the
                    // agent_group modes.
                    self.app.cx().check_approved(&ws);
                    self.app.check_audit(&ws);
                    self.app.check_modes(&ws, false);
                }
            }
            Item::Approved(root) => {
                if let Some(ws) = self.app.workspace_at(root) {
                    self.app.cx().check_approved(&ws);
                }
            }
            Item::Locks(root) => {
                if let Some(ws) = self.app.workspace_at(root) {
                    self.app.cx().sync_locks(&ws);
                }
            }
            Item::WatchLocks(root) => {
                if let Some(ws) = self.app.workspace_at(root) {
                    self.watches
                        .add(&ws.workspace.baton_dir().join(crate::locks::LOCKS_DIR));
                    self.app.cx().sync_locks(&ws);
                }
            }
            Item::WatchApproved(root) => {
                if let Some(ws) = self.app.workspace_at(root) {
                    self.watches
                        .tree(&ws.workspace.root.join(workspace::APPROVED_DIR));
                    self.app.cx().check_approved(&ws);
                }
            }
            Item::Discover(dir) => self.discover(dir),
            Item::CheckFolder(root) => self.app.check_folder(root),
            Item::Roots => {
                let mut listed = std::collections::HashSet::new();
                for root in self.app.roots() {
                    for child in std::fs::read_dir(root).into_iter().flatten().flatten() {
                        listed.insert(child.path());
                    }
                }
                // A workspace not under a root (configured itself), or one whose folder is
                // gone, is not listed above (a discovery checks the folder first).
                let unlisted: Vec<_> = self
                    .app
                    .workspaces()
                    .into_iter()
                    .map(|ws| ws.workspace.root.clone())
                    .filter(|root| !listed.contains(root))
                    .map(Item::CheckFolder)
                    .collect();
                let found = listed.into_iter().map(Item::Discover).chain(unlisted);
                self.report(Report::Found(found.collect()));
                // A `baton audit ack` made while running clears its alerts here.
                self.app.refresh_all_alerts();
            }
        }
    }

    /// A new folder under a root: if it is a workspace, adopt it (watches first, so nothing
    /// written while it is caught up is missed).
    fn discover(&self, dir: &Path) {
        // A workspace served there whose folder is lost (gone, or made again) first stops
        // being served; a folder there now is then loaded as new (see `App::check_folder`).
        self.app.check_folder(dir);
        // A symlink under a root would adopt a folder outside the configured roots.
        let real_dir = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if !real_dir || !workspace::is_workspace(dir) {
            // Gone, or no longer a workspace: nothing left to serve there.
            self.app.forget_unserved(dir);
            return;
        }
        let Ok(ws) = Workspace::open(dir) else { return };
        // None: known already. An error is logged, listed on /healthz and tried again (see
        // `App::serve_workspace`).
        if let Ok(Some(added)) = self.app.serve_workspace(ws.clone()) {
            tracing::info!(workspace = %ws.name, "new workspace");
            // Through the handle served (pinned to its folder), not the one opened here.
            self.app.beat_new(&added.workspace);
            self.watches.workspace(&ws);
            self.app.metrics().watches.inc_by(2);
            let wait = scan::catch_up(&self.app, &added);
            self.young_handoff(&ws.root, wait);
        }
    }

    /// A catch-up left handoff.json to settle (or to retry soon): the dispatcher waits for it.
    fn young_handoff(&self, root: &Path, wait: Option<Duration>) {
        if let Some(wait) = wait {
            let job = Job {
                item: Item::Handoff(root.to_path_buf()),
                seen: Instant::now(),
                renamed: false,
            };
            self.report(Report::Young(job, wait));
        }
    }

    fn report(&self, report: Report) {
        // The dispatcher is gone only at shutdown, when nothing is retried anyway.
        let _ = self.reports.send(report);
    }
}

/// The file an item is about, when it has one whose settling matters.
fn path_of(item: &Item) -> Option<PathBuf> {
    match item {
        Item::Handoff(root) => Some(workspace::handoff_file(root).path),
        Item::Checkpoint(root, file) => Some(root.join(CHECKPOINTS_DIR).join(file)),
        _ => None,
    }
}
