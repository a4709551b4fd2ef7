//! What the core asks of the ingest thread outside its own work: reconcile a workspace again
//! (a write of its failed elsewhere), watch a new folder. Sent on the ingest thread's own
//! channel, beside the watcher's signals, so it wakes at once; a full queue is an overflow,
//! and the rescan that follows covers what was asked.

use crate::app::App;
use crate::watch::Signal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;

/// The ingest thread's channel, as the core holds it once the pipeline runs.
pub(crate) struct Intake {
    pub tx: SyncSender<Signal>,
    pub overflow: Arc<AtomicBool>,
}

impl App {
    /// Connects the core to the ingest thread (once; the pipeline calls it at spawn).
    pub fn connect_intake(&self, tx: SyncSender<Signal>, overflow: Arc<AtomicBool>) {
        let _ = self.inner.runtime.intake.set(Intake { tx, overflow });
    }

    /// Asks the ingest thread to process the workspace at `root` again soon.
    pub(crate) fn ask_repair(&self, root: &Path) {
        self.ask(Signal::Repair(root.to_path_buf()));
    }

    /// Asks the ingest thread to watch the folder `dir` (recursively) from now on.
    pub(crate) fn ask_watch(&self, dir: &Path) {
        self.ask(Signal::WatchDir(dir.to_path_buf()));
    }

    /// Before the pipeline runs there is no one to ask, and nothing is lost: its start-up
    /// scan reconciles and watches every workspace.
    fn ask(&self, signal: Signal) {
        if let Some(intake) = self.inner.runtime.intake.get() {
            if intake.tx.try_send(signal).is_err() {
                intake.overflow.store(true, Ordering::Release);
            }
        }
    }
}
