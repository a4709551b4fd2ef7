//! What a transition asks of the ingest thread beside its own work: process a workspace
//! again (a write of its failed, or hashing finished elsewhere), watch a new folder. Sent on
//! the ingest thread's own channel, beside the watcher's signals, so it wakes at once; a full
//! queue is an overflow, and the rescan that follows covers what was asked.

use crate::watch::Signal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, OnceLock};

/// The ingest thread's channel, once the pipeline runs.
#[derive(Default)]
pub(in crate::app) struct IntakeLine {
    line: OnceLock<(SyncSender<Signal>, Arc<AtomicBool>)>,
}

impl IntakeLine {
    /// Connects to the ingest thread (once; the pipeline does it at spawn).
    pub fn connect(&self, tx: SyncSender<Signal>, overflow: Arc<AtomicBool>) {
        let _ = self.line.set((tx, overflow));
    }

    /// Asks the ingest thread to process the workspace at `root` again soon.
    pub fn repair(&self, root: &Path) {
        self.ask(Signal::Repair(root.to_path_buf()));
    }

    /// Asks the ingest thread to watch the folder `dir` (recursively) from now on.
    pub fn watch(&self, dir: &Path) {
        self.ask(Signal::WatchDir(dir.to_path_buf()));
    }

    /// Asks the ingest thread to look at the folder of the workspace at `root` now (it is
    /// lost or replaced: see `App::check_folder`).
    pub fn check_folder(&self, root: &Path) {
        self.ask(Signal::Folder(root.to_path_buf()));
    }

    /// Before the pipeline runs there is no one to ask, and nothing is lost: its start-up
    /// scan reconciles and watches every workspace.
    fn ask(&self, signal: Signal) {
        if let Some((tx, overflow)) = self.line.get() {
            if tx.try_send(signal).is_err() {
                overflow.store(true, Ordering::Release);
            }
        }
    }
}
