//! The look at a clustered workspace's `.baton/handoffs/` while it is served, once each
//! reconcile period within the housekeeping's budget (`App::sweep_served`, from
//! `settle_copies`). A node paused between its fence check and a copy's rename writes late,
//! after its successor moved the record on, and only this look sees it before the next
//! takeover (`published_copies::recheck`). Folders of no record the store committed (planted
//! there) are looked for too, as a start does (`published_copies::planted`).
//!
//! Only what changed since the last look is read: a record folder found current keeps its
//! fingerprint (`OpenedDir::stamp`), and `.baton/handoffs/` itself keeps one, so its folders
//! are listed again only once one was made or removed. Every part of it stops at the round's
//! deadline and is resumed at the next round where it stopped, the look for planted folders
//! too (at 100,000 record folders, one listing looked up whole outlasted the round's budget). The state is the runtime's
//! (`Runtime::sweep`), per workspace and per `Served` (a workspace loaded again starts afresh:
//! its load read its copies; one no longer served is dropped at the next pass).

use super::published_copies::{self, Seen};
use crate::app::review::records::published;
use crate::app::{App, Served};
use crate::workspace::{key_dir_name, DirsListing, OpenedDir};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Sets of copy names kept at most (records share a few: a revision, a decision, approvals);
/// past it the fingerprints are dropped and read again.
const MOST_SHAPES: usize = 1024;
/// Folders of no record kept at most per workspace (each costs a stat a pass); past it their
/// folder is listed again each pass instead.
const MOST_OTHERS: usize = 10_000;

/// The look's state, owned by the runtime (`Runtime::sweep`).
#[derive(Default)]
pub(in crate::app) struct Sweeps(Mutex<Sweep>);

impl Sweeps {
    fn lock(&self) -> MutexGuard<'_, Sweep> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where the look is: one pass over the clustered workspaces each reconcile period, resumed
/// round after round within the budget.
#[derive(Default)]
struct Sweep {
    /// When the next pass may begin.
    due: Option<Instant>,
    /// The workspaces left in this pass, by name (the next one last).
    left: Vec<String>,
    /// The last record looked at in the workspace being looked at.
    after: Option<String>,
    /// What was found, by workspace.
    kept: HashMap<String, Kept>,
    shapes: Shapes,
    /// Hashes record folders' names (see `Kept::records`).
    hasher: RandomState,
}

/// One workspace's folders as last found, for the `Served` (its address) they were found in.
#[derive(Default)]
struct Kept {
    served: usize,
    /// Record folders found current, by a hash of the folder's name: the names compared (a
    /// set in `Shapes`) and the fingerprint. Two names of one hash cannot pass for each other:
    /// the fingerprint covers the folder's inode.
    records: HashMap<u64, (u32, [u8; 16])>,
    /// `.baton/handoffs/`'s own fingerprint when its folders were last listed.
    handoffs: Option<[u8; 16]>,
    /// Folders of no record found then (of `invalid` answers, or emptied of what was planted),
    /// by name, with their files' fingerprint: a file put into one later changes it.
    others: HashMap<String, Seen>,
    /// The look for planted folders under way, stopped at a round's deadline.
    look: Option<Look>,
}

/// A look at `.baton/handoffs/`'s folders for those of no record, resumed round after round:
/// its listing first, then each folder.
#[derive(Default)]
struct Look {
    /// `.baton/handoffs/`'s fingerprint, taken before it was listed: a folder made or removed
    /// since changes it, and the next look lists again.
    now: Option<[u8; 16]>,
    /// The listing under way, until through.
    listing: Option<DirsListing>,
    listed: Vec<String>,
    /// The next folder of `listed` to look at.
    next: usize,
    /// Folders of no record found so far.
    others: HashMap<String, Seen>,
}

impl Look {
    /// Lists on, then looks at the folders left, `one` at a time (`Some`: a folder of no
    /// record, to keep), until `deadline`; `true` once through. Each call gets somewhere: a
    /// few hundred entries listed, or a folder looked at.
    fn go_on(
        &mut self,
        deadline: Instant,
        mut one: impl FnMut(&str) -> Option<Seen>,
    ) -> std::io::Result<bool> {
        if let Some(listing) = self.listing.as_mut() {
            if !listing.go_on(deadline)? {
                return Ok(false);
            }
            self.listed = self
                .listing
                .take()
                .map(DirsListing::names)
                .unwrap_or_default();
            if Instant::now() >= deadline {
                return Ok(false);
            }
        }
        let mut first = true;
        while let Some(dir) = self.listed.get(self.next) {
            if !first && Instant::now() >= deadline {
                return Ok(false);
            }
            first = false;
            if let Some(seen) = one(dir) {
                self.others.insert(dir.clone(), seen);
            }
            self.next += 1;
        }
        Ok(true)
    }
}

/// The sets of names compared, each kept once.
#[derive(Default)]
struct Shapes {
    names: Vec<Vec<String>>,
    index: HashMap<Vec<String>, u32>,
}

impl Shapes {
    fn id(&mut self, names: Vec<String>) -> u32 {
        if let Some(id) = self.index.get(&names) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(names.clone());
        self.index.insert(names, id);
        id
    }
}

impl App {
    /// Looks at the copies of clustered workspaces until `deadline`, a pass each reconcile
    /// period (see the module doc).
    pub(super) fn sweep_served(&self, deadline: Instant) {
        let mut sweep = self.inner.runtime.sweep.lock();
        let sweep = &mut *sweep;
        if sweep.left.is_empty() {
            if sweep.due.is_some_and(|due| Instant::now() < due) {
                return;
            }
            sweep.due = Some(Instant::now() + self.config().reconcile);
            let clustered = self.workspaces().into_iter();
            let clustered =
                clustered.filter(|ws| ws.workspace.fence.is_set() && ws.place.is_none());
            sweep.left = clustered.map(|ws| ws.workspace.name.clone()).collect();
            sweep.left.reverse();
            // A set: at 10,000 workspaces a list's look-up per kept one is 10^8 comparisons.
            let listed: std::collections::HashSet<&String> = sweep.left.iter().collect();
            sweep.kept.retain(|name, _| listed.contains(name));
            if sweep.shapes.names.len() > MOST_SHAPES {
                sweep.shapes = Shapes::default();
                sweep.kept.values_mut().for_each(|k| k.records.clear());
            }
            sweep.after = None;
        }
        while let Some(name) = sweep.left.last().cloned() {
            if Instant::now() >= deadline {
                return;
            }
            let done = match self.workspace(&name) {
                Some(ws) => self.sweep_one(&ws, sweep, deadline),
                None => true,
            };
            if done {
                sweep.left.pop();
                sweep.after = None;
            }
        }
    }

    /// `sweep_served` of one workspace, from where it was left; `true` once every record's
    /// copies were looked at.
    fn sweep_one(&self, ws: &Arc<Served>, sweep: &mut Sweep, deadline: Instant) -> bool {
        // Only the holder writes; a store read-only while damaged is left to `baton repair`.
        if ws.workspace.may_write().is_err() || ws.store.is_damaged() {
            return true;
        }
        let Some(handoffs) = ws
            .workspace
            .open_dir(&ws.workspace.handoffs_dir())
            .ok()
            .flatten()
        else {
            return true;
        };
        let served = Arc::as_ptr(ws) as usize;
        let kept = sweep.kept.entry(ws.workspace.name.clone()).or_default();
        if kept.served != served {
            *kept = Kept {
                served,
                ..Kept::default()
            };
        }
        if sweep.after.is_none() && !self.sweep_others(ws, &handoffs, kept, deadline) {
            return false;
        }
        loop {
            if Instant::now() >= deadline {
                return false;
            }
            let st = ws.lock();
            let from = match &sweep.after {
                Some(key) => Bound::Excluded(key.clone()),
                None => Bound::Unbounded,
            };
            let Some((key, rec)) = st.records.range((from, Bound::Unbounded)).next() else {
                return true;
            };
            let (key, dir) = (key.clone(), key_dir_name(key));
            let hash = sweep.hasher.hash_one(&dir);
            // Unchanged since found current: not read, nor the store asked what it publishes.
            let seen = kept.records.get(&hash);
            let names = seen.map(|(shape, _)| &sweep.shapes.names[*shape as usize][..]);
            if let (Some(names), Some((_, stamp))) = (names, seen) {
                if published_copies::unchanged(&handoffs, &dir, names, stamp) {
                    sweep.after = Some(key);
                    continue;
                }
            }
            let truth = published(&ws.store, &key);
            let found = published_copies::recheck(
                &ws.workspace,
                &handoffs,
                &ws.store,
                &ws.anchors,
                &dir,
                &truth,
            );
            if found.differs {
                ws.publish_record(rec);
            }
            drop(st);
            match found.seen {
                Some((names, stamp)) => {
                    let shape = sweep.shapes.id(names);
                    kept.records.insert(hash, (shape, stamp))
                }
                None => kept.records.remove(&hash),
            };
            for finding in found.findings {
                self.cx().tampered(ws, finding);
            }
            for late in found.late {
                self.tell_late(ws, late, "late_copy");
            }
            sweep.after = Some(key);
        }
    }

    /// Looks for folders of `.baton/handoffs/` that are no record of the store's: listed
    /// again only when a folder was made or removed there since the last look (the folder's
    /// own fingerprint), and those of no record found before only when a file in them changed.
    /// Stops at `deadline` and goes on from there at the next call; `true` once through.
    fn sweep_others(
        &self,
        ws: &Served,
        handoffs: &OpenedDir,
        kept: &mut Kept,
        deadline: Instant,
    ) -> bool {
        let Kept {
            handoffs: known,
            others: prior,
            look,
            ..
        } = kept;
        let look = match look {
            Some(look) => look,
            None => {
                let now = handoffs.stamp(&[]).ok().flatten();
                let (listed, listing) = match now.filter(|now| known.as_ref() == Some(now)) {
                    Some(_) => (prior.keys().cloned().collect(), None),
                    None => match handoffs.dirs_listing() {
                        Ok(listing) => (Vec::new(), Some(listing)),
                        Err(e) => {
                            tracing::debug!(workspace = %ws.workspace.name, error = %e, "cannot list the record folders");
                            return true;
                        }
                    },
                };
                look.insert(Look {
                    now,
                    listing,
                    listed,
                    ..Look::default()
                })
            }
        };
        let through = look.go_on(deadline, |dir| {
            // Under the state lock: none of this node's own receipts is half done meanwhile.
            let st = ws.lock();
            if record_of(dir).is_some_and(|key| st.records.contains_key(&key)) {
                return None;
            }
            if let Some((names, stamp)) = prior.get(dir) {
                if published_copies::unchanged(handoffs, dir, names, stamp) {
                    return Some((names.clone(), *stamp));
                }
            }
            let found = published_copies::planted(&ws.workspace, handoffs, &ws.anchors, dir);
            drop(st);
            for finding in found.findings {
                self.cx().tampered(ws, finding);
            }
            found.seen
        });
        let through = match through {
            Ok(through) => through,
            Err(e) => {
                tracing::debug!(workspace = %ws.workspace.name, error = %e, "cannot list the record folders");
                kept.look = None;
                return true;
            }
        };
        if !through {
            return false;
        }
        let Some(look) = kept.look.take() else {
            return true;
        };
        // Too many to stat each pass: listed again instead.
        let whole = look.others.len() <= MOST_OTHERS;
        kept.handoffs = look.now.filter(|_| whole);
        kept.others = if whole { look.others } else { HashMap::new() };
        true
    }
}

/// The record key whose folder is `dir`, if it is one's (`key_dir_name` reversed: keys hold
/// no `%`).
fn record_of(dir: &str) -> Option<String> {
    let key = dir.replace("%3A", ":").replace("%2E", ".");
    (key_dir_name(&key) == dir).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_name_maps_back_to_its_key_only() {
        for key in ["h1", "a:b:c", "...", "x.y-z_1"] {
            assert_eq!(record_of(&key_dir_name(key)).as_deref(), Some(key));
        }
        assert_eq!(record_of("a:b"), None, "never made by key_dir_name");
    }

    /// What the look keeps per record folder, at 10,000 and 100,000 records (run with
    /// `--ignored --nocapture` to see the numbers).
    #[test]
    #[ignore]
    fn sweep_memory() {
        let heap = || {
            // SAFETY: mallinfo2 only reads the allocator's counters.
            let m = unsafe { libc::mallinfo2() };
            m.uordblks + m.hblkhd
        };
        for n in [10_000usize, 100_000] {
            let before = heap();
            let mut sweep = Sweep::default();
            let kept = sweep.kept.entry("ws".into()).or_default();
            for i in 0..n {
                let dir = format!("task-{i:08}-review");
                let mut names = vec!["handoff.json".to_string(), "meta.json".into()];
                names.extend((1..=1 + i % 3).map(|r| format!("rev-{r}.json")));
                if i % 2 == 0 {
                    names.push("decision.json".into());
                }
                let shape = sweep.shapes.id(names);
                kept.records
                    .insert(sweep.hasher.hash_one(&dir), (shape, [0; 16]));
            }
            let bytes = heap() - before;
            println!(
                "{n} records: {} KiB, {} bytes a record ({} sets of names)",
                bytes / 1024,
                bytes / n,
                sweep.shapes.names.len()
            );
            drop(sweep);
            // The layout before: each folder's name and names compared, as strings.
            let before = heap();
            let mut old: HashMap<String, (Vec<String>, [u8; 16])> = HashMap::new();
            for i in 0..n {
                let dir = format!("task-{i:08}-review");
                let mut names = vec!["handoff.json".to_string(), "meta.json".into()];
                names.extend((1..=1 + i % 3).map(|r| format!("rev-{r}.json")));
                if i % 2 == 0 {
                    names.push("decision.json".into());
                }
                old.insert(dir, (names, [0; 16]));
            }
            let bytes = heap() - before;
            println!(
                "  a folder's names as strings: {} KiB, {} bytes a record",
                bytes / 1024,
                bytes / n
            );
        }
    }
}

#[cfg(test)]
mod cost {
    use super::record_of;
    use crate::workspace::Workspace;
    use std::time::Instant;

    /// What looking for planted folders costs at 10,000 and 100,000 record folders: one stat
    /// of `.baton/handoffs/` while no folder was made or removed there, a listing (and a
    /// look-up per folder) once one was (run with `--ignored --nocapture`).
    #[test]
    #[ignore]
    fn planted_look_cost() {
        for n in [10_000usize, 100_000] {
            let tmp = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
            let handoffs = tmp.path().join(".baton/handoffs");
            for i in 0..n {
                std::fs::create_dir_all(handoffs.join(format!("task-{i:08}"))).unwrap();
            }
            let ws = Workspace::open(tmp.path()).unwrap();
            let opened = ws.open_dir(&ws.handoffs_dir()).unwrap().unwrap();
            let known: std::collections::BTreeSet<String> =
                (0..n).map(|i| format!("task-{i:08}")).collect();
            let runs = 5;
            let started = Instant::now();
            for _ in 0..runs {
                let _ = opened.stamp(&[]).unwrap();
            }
            let stat = started.elapsed() / runs;
            let started = Instant::now();
            for _ in 0..runs {
                let dirs = opened.list_dirs().unwrap();
                let others = dirs
                    .iter()
                    .filter(|d| !record_of(d).is_some_and(|k| known.contains(&k)))
                    .count();
                assert_eq!(others, 0);
            }
            let listed = started.elapsed() / runs;
            println!("{n} record folders: unchanged {stat:?}, listed and looked up {listed:?}");
        }
    }

    /// The look for planted folders at 100,000 record folders (and 100 folders of no record),
    /// whole in one call as it was, then in slices of housekeeping's budget (100 ms) as the
    /// sweep runs it now: the whole pass's time, and the longest a round is held by it (run
    /// with `--ignored --nocapture`; five runs, min / median / max).
    #[test]
    #[ignore]
    fn planted_look_in_slices() {
        use super::Look;
        use std::time::Duration;
        let n = 100_000usize;
        let tmp = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let handoffs = tmp.path().join(".baton/handoffs");
        for i in 0..n {
            std::fs::create_dir_all(handoffs.join(format!("task-{i:08}"))).unwrap();
        }
        for i in 0..100 {
            let other = handoffs.join(format!("invalid%{i}"));
            std::fs::create_dir_all(&other).unwrap();
            std::fs::write(other.join("invalid-1.json"), b"{}").unwrap();
        }
        let ws = Workspace::open(tmp.path()).unwrap();
        let opened = ws.open_dir(&ws.handoffs_dir()).unwrap().unwrap();
        let known: std::collections::BTreeMap<String, ()> =
            (0..n).map(|i| (format!("task-{i:08}"), ())).collect();
        let state = std::sync::Mutex::new(());
        // What the sweep does for each folder: under the state lock, a record's look-up; a
        // folder of no record is looked at (`unchanged`: opened and stamped).
        let one = |dir: &str| {
            let _st = state.lock().unwrap();
            if record_of(dir).is_some_and(|k| known.contains_key(&k)) {
                return None;
            }
            let names = vec!["invalid-1.json".to_string()];
            crate::app::runtime::published_copies::unchanged(&opened, dir, &names, &[0; 16]);
            None
        };
        let budget = Duration::from_millis(100);
        let far = Instant::now() + Duration::from_secs(3600);
        let (mut whole, mut sliced, mut longest, mut slices) = (vec![], vec![], vec![], vec![]);
        for _ in 0..5 {
            let started = Instant::now();
            let mut look = Look {
                listed: opened.list_dirs().unwrap(),
                ..Look::default()
            };
            assert!(look.go_on(far, one).unwrap());
            whole.push(started.elapsed());
            assert_eq!(look.listed.len(), n + 100);

            let started = Instant::now();
            let (mut most, mut count) = (Duration::ZERO, 0);
            let mut look: Option<Look> = None;
            loop {
                let round = Instant::now();
                let l = look.get_or_insert_with(|| Look {
                    listing: Some(opened.dirs_listing().unwrap()),
                    ..Look::default()
                });
                let done = l.go_on(round + budget, one).unwrap();
                most = most.max(round.elapsed());
                count += 1;
                if done {
                    assert_eq!(l.listed.len(), n + 100, "listed whole");
                    break;
                }
            }
            sliced.push(started.elapsed());
            longest.push(most);
            slices.push(count);
        }
        let show = |what: &str, v: &mut Vec<Duration>| {
            v.sort();
            println!(
                "{what}: min {:?} median {:?} max {:?}",
                v[0],
                v[v.len() / 2],
                v[v.len() - 1]
            );
        };
        println!("{n} record folders, 100 of no record, budget {budget:?}:");
        show(
            "  before, one call (the round held as long)",
            &mut whole.clone(),
        );
        show("  after, the whole look over its slices", &mut sliced);
        show("  after, the longest slice (the round held)", &mut longest);
        println!("  slices a look: {slices:?}");
    }
}
