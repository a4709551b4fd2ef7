//! A record folder of the embedded store: files under data_dir. A file is looked at through
//! one open descriptor: its size and time (the item's fingerprint) and its bytes come from
//! the same file, so they agree. A folder visited for one record (the event of a handoff
//! received or decided) keeps what it read of `meta.json` and `decision.json` for the items'
//! loads, which then read nothing again: a burst's indexing read each new record's meta.json
//! twice and looked at it four times.

use super::{RecordFolder, Source, MAX_RECORD};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// The files a single record's visit keeps once read: the ones every visit reads
/// (`meta.json`, which carries the revision in place) or that change at each decision.
const KEPT: [&str; 2] = ["meta.json", "decision.json"];

/// A file as read once: its stamp, its time in seconds, and its JSON (`None`: not JSON, or
/// larger than `MAX_RECORD`).
#[derive(Clone)]
struct Seen {
    size: u64,
    fp: String,
    modified: i64,
    json: Option<Arc<Value>>,
}

pub(super) struct FileFolder {
    dir: PathBuf,
    /// Keep the JSON of the `KEPT` files for the items' loads (a single record's visit); a
    /// whole workspace's catalogue keeps none, so it never holds every record's text at once.
    keep: bool,
    /// File name -> what was found (`None`: missing or unreadable).
    seen: RefCell<HashMap<String, Option<Seen>>>,
}

impl FileFolder {
    pub(super) fn new(dir: PathBuf, keep: bool) -> FileFolder {
        FileFolder {
            dir,
            keep,
            seen: RefCell::default(),
        }
    }

    /// `name` looked at once (and read, when `json`): later asks of it answer from then.
    fn look(&self, name: &str, json: bool) -> Option<Seen> {
        if let Some(seen) = self.seen.borrow().get(name) {
            if !json || seen.as_ref().is_none_or(|s| s.json.is_some()) {
                return seen.clone();
            }
        }
        let seen = read(&self.dir.join(name), json);
        self.seen
            .borrow_mut()
            .insert(name.to_string(), seen.clone());
        seen
    }

    fn kept(&self, name: &str) -> bool {
        self.keep && KEPT.contains(&name)
    }
}

/// Looks at `path`: a stat, or when `json` an open (never waiting on a FIFO) whose
/// descriptor gives the size and time of the bytes read (at most `MAX_RECORD`).
fn read(path: &std::path::Path, json: bool) -> Option<Seen> {
    use std::os::unix::fs::OpenOptionsExt;
    let (m, file) = match json {
        false => (std::fs::metadata(path).ok()?, None),
        true => {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(path)
                .ok()?;
            (file.metadata().ok()?, Some(file))
        }
    };
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let mut seen = Seen {
        size: m.len(),
        fp: format!("{}:{}", m.len(), mtime.map_or(0, |d| d.as_nanos())),
        modified: mtime.map_or(0, |d| d.as_secs() as i64),
        json: None,
    };
    match file {
        Some(file) if m.is_file() && m.len() <= MAX_RECORD => {
            let mut bytes = Vec::with_capacity(m.len() as usize);
            file.take(MAX_RECORD + 1).read_to_end(&mut bytes).ok()?;
            seen.json = serde_json::from_slice(&bytes).ok().map(Arc::new);
        }
        _ => {}
    }
    Some(seen)
}

impl RecordFolder for FileFolder {
    fn json(&self, name: &str) -> Option<Value> {
        self.look(name, true)?.json.map(Arc::unwrap_or_clone)
    }

    fn stamp(&self, name: &str) -> Option<(u64, String)> {
        let seen = self.look(name, self.kept(name))?;
        Some((seen.size, seen.fp))
    }

    fn source(&self, name: &str) -> Source {
        let path = self.dir.join(name);
        let kept = match self.kept(name) {
            true => self.seen.borrow().get(name).cloned().flatten(),
            false => None,
        };
        match kept.and_then(|s| Some((s.json?, s.modified))) {
            Some((json, modified)) => Source::Read { json, modified },
            None => Source::File(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fingerprint a stat of the file gives (what the index holds for it).
    fn stat_fp(path: &std::path::Path) -> String {
        let m = std::fs::metadata(path).unwrap();
        let ns = m.modified().unwrap().duration_since(std::time::UNIX_EPOCH);
        format!("{}:{}", m.len(), ns.unwrap().as_nanos())
    }

    #[test]
    fn one_records_visit_reads_its_meta_once_and_hands_it_to_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("meta.json");
        std::fs::write(&meta, br#"{"key":"k","revision":1,"content":"{}"}"#).unwrap();
        std::fs::write(dir.path().join("rev-1.json"), b"{}").unwrap();
        let folder = FileFolder::new(dir.path().to_path_buf(), true);
        assert_eq!(folder.json("meta.json").unwrap()["key"], "k");
        let (size, fp) = folder.stamp("meta.json").unwrap();
        let len = std::fs::metadata(&meta).unwrap().len();
        assert_eq!(
            (size, fp),
            (len, stat_fp(&meta)),
            "the stat's own fingerprint"
        );
        // Gone now: the load answers from what the visit read, not from the disk.
        std::fs::remove_file(&meta).unwrap();
        let source = folder.source("meta.json");
        assert!(matches!(source, Source::Read { .. }), "{source:?}");
        assert_eq!(source.json().unwrap()["revision"], 1);
        assert!(folder.stamp("decision.json").is_none());
        // Another revision's file is only looked at, and read when loaded.
        assert_eq!(folder.stamp("rev-1.json").unwrap().0, 2);
        assert!(matches!(folder.source("rev-1.json"), Source::File(_)));
    }

    #[test]
    fn a_whole_catalogue_keeps_nothing_for_the_loads() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("meta.json");
        std::fs::write(&meta, br#"{"key":"k"}"#).unwrap();
        let folder = FileFolder::new(dir.path().to_path_buf(), false);
        assert_eq!(folder.json("meta.json").unwrap()["key"], "k");
        assert_eq!(folder.stamp("meta.json").unwrap().1, stat_fp(&meta));
        assert!(matches!(folder.source("meta.json"), Source::File(_)));
        assert!(folder.json("absent.json").is_none() && folder.stamp("absent.json").is_none());
    }
}
