//! What this node last wrote of each record folder, as the statement that changed the folder
//! found it after the change (`records::FOLDER_CHANGE`: the stamps of all its files, the bytes
//! of the few its readers ask for). The search index reads a folder right after each change of
//! it; answered from here, that read is no transaction (it was one of every transition).
//!
//! Exact because only the holder of a workspace's lease writes its records, each write under
//! the lease's epoch in the same statement: while this node still holds the epoch a folder was
//! written under, nothing else has changed the folder since. A view is kept only when it is
//! certain, and otherwise the folder is read from the database as before:
//! - two changes of one folder that overlap keep nothing (each statement's snapshot may or may
//!   not hold the other's rows), and a folder being changed is read from the database;
//! - after a change that failed (a statement whose connection broke may still commit on the
//!   server later), nothing of that workspace is kept under that epoch again;
//! - a view written under another epoch than the one held now (the lease moved, even back to
//!   this node) is not used;
//! - a view whose change began before the pool last made a connection is not used: the
//!   database may have lost commits it acknowledged (a failover to a replica behind it, a
//!   restore) without the lease moving, and every such loss breaks the pool's connections.

use crate::store::FolderFile;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most folders kept, and most bytes of files kept in all (the oldest go first).
const MAX_FOLDERS: usize = 1024;
const MAX_BYTES: usize = 16 << 20;
/// A file larger than this is kept without its bytes (a read of them goes to the database).
pub(super) const MAX_FILE: u64 = 1 << 20;

/// A record folder as a change left it.
#[derive(Debug)]
pub(super) struct View {
    /// The epoch it was written under.
    pub epoch: i64,
    /// Sorted by name; bytes of the files asked for (`Written::asked`) no larger than the
    /// bound asked for and `MAX_FILE`.
    pub files: Vec<FolderFile>,
}

impl View {
    fn bytes(&self) -> usize {
        let kept = self.files.iter().filter_map(|f| f.bytes.as_ref());
        kept.map(Vec::len).sum()
    }
}

#[derive(Debug, Default)]
struct Slot {
    /// Changes of the folder under way.
    changing: u32,
    /// Whether two of them overlapped since none was under way.
    crossed: bool,
    /// The folder as its last change left it, with its place in `Inner::order` and the
    /// connections the pool had made when the change began.
    view: Option<(View, u64, u64)>,
}

type Key = (String, String);

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<Key, Slot>,
    /// Folders with a view, oldest first, each with the number its view was kept under (a
    /// folder kept again is further on; its older place is skipped).
    order: VecDeque<(Key, u64)>,
    kept: u64,
    views: usize,
    bytes: usize,
    /// A workspace whose change failed under an epoch: nothing of it is kept under that epoch
    /// (the highest such epoch).
    doubt: HashMap<String, i64>,
    /// The files whose bytes the folders' readers asked for last, and the bound they gave.
    asked: (Vec<String>, u64),
}

#[derive(Debug, Default)]
pub(super) struct Written {
    inner: Mutex<Inner>,
    /// How many connections the pool has made (`conn::Manager` counts them).
    made: Arc<AtomicU64>,
}

impl Written {
    /// Kept views count as current only while the pool has made `made` connections.
    pub(super) fn new(made: Arc<AtomicU64>) -> Written {
        Written {
            inner: Mutex::default(),
            made,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files whose bytes a change should keep, and the bound: what readers asked for last.
    pub(super) fn asked(&self) -> (Vec<String>, u64) {
        let inner = self.lock();
        (inner.asked.0.clone(), inner.asked.1.min(MAX_FILE))
    }

    /// A change of folder `dir` of workspace `tag` under `epoch` begins: its view is dropped,
    /// and a change already under way makes neither certain. Gives what `end` takes back.
    pub(super) fn begin(&self, tag: &str, dir: &str, epoch: i64) -> Began {
        // Read before the change's statement takes a connection, so a connection made for it
        // (or after it) leaves the view unused.
        let began = Began(self.made.load(Ordering::SeqCst));
        let mut inner = self.lock();
        // Only a newer epoch clears a doubt: a change that read an older epoch before this
        // node took the lease again may begin after a change under the new one failed.
        if inner.doubt.get(tag).is_some_and(|e| *e < epoch) {
            inner.doubt.remove(tag);
        }
        let slot = inner.slots.entry((tag.into(), dir.into())).or_default();
        let dropped = slot.view.take();
        slot.crossed |= slot.changing > 0;
        slot.changing += 1;
        if let Some((view, ..)) = dropped {
            inner.views -= 1;
            inner.bytes -= view.bytes();
        }
        began
    }

    /// The change begun by `begin` ended: committed with `view` (the folder after it), or
    /// failed (`None`).
    pub(super) fn end(&self, tag: &str, dir: &str, epoch: i64, began: Began, view: Option<View>) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let key: Key = (tag.into(), dir.into());
        if view.is_none() {
            let doubt = inner.doubt.entry(tag.into()).or_insert(epoch);
            *doubt = (*doubt).max(epoch);
        }
        let doubted = inner.doubt.get(tag).is_some_and(|e| *e >= epoch);
        let Some(slot) = inner.slots.get_mut(&key) else {
            return;
        };
        slot.changing = slot.changing.saturating_sub(1);
        let certain = !slot.crossed && !doubted;
        if slot.changing == 0 {
            slot.crossed = false;
        }
        match view.filter(|_| certain) {
            Some(view) => {
                inner.kept += 1;
                inner.views += 1;
                inner.bytes += view.bytes();
                slot.view = Some((view, inner.kept, began.0));
                inner.order.push_back((key, inner.kept));
                inner.evict();
            }
            None if slot.changing == 0 && slot.view.is_none() => {
                inner.slots.remove(&key);
            }
            None => {}
        }
    }

    /// Folder `dir` of workspace `tag` as this node last wrote it, when that is certainly how
    /// it is now (`epoch`: the epoch this node holds now) and has the bytes asked for:
    /// `with_bytes` no larger than `max`, as `Backend::folder` answers. Otherwise `None`, and
    /// the reader asks the database; what it asked for is kept with the next changes.
    pub(super) fn folder(
        &self,
        tag: &str,
        dir: &str,
        epoch: Option<i64>,
        with_bytes: &[&str],
        max: u64,
    ) -> Option<Vec<FolderFile>> {
        let mut inner = self.lock();
        if inner
            .asked
            .0
            .iter()
            .map(String::as_str)
            .ne(with_bytes.iter().copied())
            || inner.asked.1 != max
        {
            inner.asked = (with_bytes.iter().map(|n| n.to_string()).collect(), max);
        }
        let slot = inner.slots.get(&(tag.to_string(), dir.to_string()))?;
        let (view, _, made) = slot.view.as_ref().filter(|_| slot.changing == 0)?;
        if Some(view.epoch) != epoch || *made != self.made.load(Ordering::SeqCst) {
            return None;
        }
        let mut out = Vec::with_capacity(view.files.len());
        for file in &view.files {
            let wanted = with_bytes.contains(&file.name.as_str()) && file.size <= max;
            if wanted && file.bytes.is_none() {
                return None;
            }
            out.push(FolderFile {
                name: file.name.clone(),
                size: file.size,
                stamp: file.stamp.clone(),
                bytes: file.bytes.clone().filter(|_| wanted),
            });
        }
        Some(out)
    }
}

/// The pool's count of connections made when a change began.
#[derive(Debug, Clone, Copy)]
pub(super) struct Began(u64);

impl Inner {
    /// Drops the oldest views while too many are kept (or too many places of views dropped
    /// since, by a change of their folder, wait in `order`).
    fn evict(&mut self) {
        while self.views > MAX_FOLDERS
            || self.bytes > MAX_BYTES
            || self.order.len() > 4 * MAX_FOLDERS
        {
            let Some((key, kept)) = self.order.pop_front() else {
                return;
            };
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            if slot.view.as_ref().is_some_and(|(_, k, _)| *k == kept) {
                let (view, ..) = slot.view.take().expect("checked");
                self.views -= 1;
                self.bytes -= view.bytes();
                if slot.changing == 0 {
                    self.slots.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, stamp: &str, bytes: Option<&[u8]>) -> FolderFile {
        FolderFile {
            name: name.into(),
            size: 2,
            stamp: stamp.into(),
            bytes: bytes.map(<[u8]>::to_vec),
        }
    }

    fn view(epoch: i64, stamp: &str) -> Option<View> {
        Some(View {
            epoch,
            files: vec![
                file("handoff.json", stamp, None),
                file("meta.json", stamp, Some(b"{}")),
            ],
        })
    }

    const ASKED: [&str; 1] = ["meta.json"];

    #[test]
    fn a_folder_is_answered_as_its_last_change_left_it_under_the_epoch_held() {
        let w = Written::default();
        assert!(w.folder("t", "k", Some(1), &ASKED, 99).is_none());
        let b = w.begin("t", "k", 1);
        assert!(
            w.folder("t", "k", Some(1), &ASKED, 99).is_none(),
            "changing"
        );
        w.end("t", "k", 1, b, view(1, "2:7"));
        let files = w.folder("t", "k", Some(1), &ASKED, 99).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].bytes, None, "not asked for");
        assert_eq!(files[1].bytes.as_deref(), Some(&b"{}"[..]));
        assert_eq!(files[1].stamp, "2:7");
        // Another epoch (the lease moved, even back), or none held: the database's.
        assert!(w.folder("t", "k", Some(2), &ASKED, 99).is_none());
        assert!(w.folder("t", "k", None, &ASKED, 99).is_none());
        // Bytes asked for that were not kept, or a bound they do not fit: the database's.
        assert!(w.folder("t", "k", Some(1), &["handoff.json"], 99).is_none());
        assert!(w.folder("t", "k", Some(1), &ASKED, 1).unwrap()[1]
            .bytes
            .is_none());
        assert_eq!(w.asked(), (vec!["meta.json".to_string()], 1));
    }

    #[test]
    fn overlapping_changes_and_a_failed_one_keep_nothing() {
        let w = Written::default();
        let b1 = w.begin("t", "k", 1);
        let b2 = w.begin("t", "k", 1);
        w.end("t", "k", 1, b1, view(1, "2:7"));
        w.end("t", "k", 1, b2, view(1, "2:8"));
        assert!(w.folder("t", "k", Some(1), &ASKED, 99).is_none(), "crossed");
        // Alone again: kept.
        let b = w.begin("t", "k", 1);
        w.end("t", "k", 1, b, view(1, "2:9"));
        assert!(w.folder("t", "k", Some(1), &ASKED, 99).is_some());
        // A failed change of another folder of the workspace: nothing of it under epoch 1.
        let b = w.begin("t", "j", 1);
        w.end("t", "j", 1, b, None);
        let b = w.begin("t", "k", 1);
        w.end("t", "k", 1, b, view(1, "2:10"));
        assert!(
            w.folder("t", "k", Some(1), &ASKED, 99).is_none(),
            "in doubt"
        );
        // Under the next epoch the doubt is gone.
        let b = w.begin("t", "k", 2);
        w.end("t", "k", 2, b, view(2, "2:11"));
        assert!(w.folder("t", "k", Some(2), &ASKED, 99).is_some());
    }

    #[test]
    fn a_change_under_an_older_epoch_does_not_clear_a_newer_epochs_doubt() {
        let w = Written::default();
        // Under epoch 2 (the lease taken again) a change fails: it may still commit.
        let b = w.begin("t", "j", 2);
        w.end("t", "j", 2, b, None);
        // A change that read epoch 1 before the take begins, and is refused (the fence).
        let b = w.begin("t", "x", 1);
        w.end("t", "x", 1, b, None);
        // Epoch 2's doubt holds: nothing of the workspace is kept under it.
        let b = w.begin("t", "k", 2);
        w.end("t", "k", 2, b, view(2, "2:7"));
        assert!(w.folder("t", "k", Some(2), &ASKED, 99).is_none());
    }

    #[test]
    fn a_connection_made_since_a_change_began_leaves_its_view_unused() {
        let made = Arc::new(AtomicU64::new(1));
        let w = Written::new(made.clone());
        let b = w.begin("t", "k", 1);
        w.end("t", "k", 1, b, view(1, "2:7"));
        assert!(w.folder("t", "k", Some(1), &ASKED, 99).is_some());
        // The server restarted (a restore, a failover behind the old primary): the pool's
        // connections broke and it made a new one. The database may have lost the change.
        made.fetch_add(1, Ordering::SeqCst);
        assert!(w.folder("t", "k", Some(1), &ASKED, 99).is_none());
        // A connection made while a change is under way: its view is not used either.
        let b = w.begin("t", "k", 1);
        made.fetch_add(1, Ordering::SeqCst);
        w.end("t", "k", 1, b, view(1, "2:8"));
        assert!(w.folder("t", "k", Some(1), &ASKED, 99).is_none());
        // A change begun after it: kept again.
        let b = w.begin("t", "k", 1);
        w.end("t", "k", 1, b, view(1, "2:9"));
        assert_eq!(
            w.folder("t", "k", Some(1), &ASKED, 99).unwrap()[1].stamp,
            "2:9"
        );
    }

    #[test]
    fn the_oldest_folders_go_first_beyond_the_bound() {
        let w = Written::default();
        for i in 0..MAX_FOLDERS + 5 {
            let dir = i.to_string();
            let b = w.begin("t", &dir, 1);
            w.end("t", &dir, 1, b, view(1, "2:7"));
        }
        assert!(w.folder("t", "0", Some(1), &ASKED, 99).is_none());
        assert!(w.folder("t", "4", Some(1), &ASKED, 99).is_none());
        assert!(w.folder("t", "5", Some(1), &ASKED, 99).is_some());
        let inner = w.lock();
        assert_eq!(inner.views, MAX_FOLDERS);
        assert_eq!(inner.slots.len(), MAX_FOLDERS);
    }
}
