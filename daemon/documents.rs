//! State of the whole daemon that belongs to no workspace and must be the same on every node
//! of a cluster (reviewers' scoped grants), kept as one JSON document per name and read at
//! each use. One daemon keeps such a document as a file of data_dir (`InDataDir`); a cluster
//! keeps it as a row (`crate::cluster`) that every node reads at each use and changes
//! under the row's lock, so a change made on one node (a grant's use taken, a revocation)
//! holds on every node at once and two nodes never both take the last use of a grant.

use crate::workspace::fsync::Kind;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A change to a document: given the document as it is (`None`: never written), the
/// document to save in its place, or `None` to save nothing. An error saves nothing and is
/// the change's answer.
pub type Change<'a> = &'a mut (dyn FnMut(Option<&[u8]>) -> io::Result<Option<Vec<u8>>> + Send);

/// The shared keeper of documents (a cluster's database).
pub trait Documents: Send + Sync + std::fmt::Debug {
    /// Document `name` as last saved, or `None` when none was.
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>>;
    /// Reads document `name` under a lock every other change of it waits for, and saves what
    /// `change` makes of it; nothing else changes it in between.
    fn change(&self, name: &str, change: Change<'_>) -> io::Result<()>;
    /// Where document `name` is, in words for a person (a path, or the database's row).
    fn place(&self, name: &str) -> String;
}

/// A node's own file of document `name` (`data_dir/NAME`, kept while it ran alone), handed to
/// `carry` as the node opens the cluster's documents, then set aside as `NAME.before-cluster`
/// so that it is offered once: a row an operator deletes later (to start afresh, or to rotate
/// a key) must not come back from a node's old file at its next start. `carry`'s error leaves
/// the file where it is (offered again at the next start). `None` when there is no such file,
/// or when it is the document itself (one daemon).
pub fn carry_own<T>(
    documents: &dyn Documents,
    data_dir: &Path,
    name: &str,
    carry: impl FnOnce(&[u8]) -> io::Result<T>,
) -> io::Result<Option<T>> {
    let file = data_dir.join(name);
    if documents.place(name) == file.display().to_string() {
        return Ok(None);
    }
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let carried = carry(&bytes)?;
    let aside = data_dir.join(format!("{name}.before-cluster"));
    std::fs::rename(&file, &aside)?;
    tracing::info!(file = %file.display(), kept = %aside.display(), "this node's own file offered to the cluster once and set aside");
    Ok(Some(carried))
}

/// A document of lists by name (a reviewer's passkeys, their browsers' push subscriptions),
/// read and changed whole; none while never written. A body that does not parse (an empty one
/// included) is damage: an error naming the document, what it should hold and how to mend it,
/// never read as none and never written over. A list left empty is dropped when saved.
pub struct Lists<T> {
    documents: std::sync::Arc<dyn Documents>,
    name: &'static str,
    /// What the document holds, as the damage is told: "a list of passkeys".
    what: &'static str,
    /// What is refused while it is damaged, and how to mend it.
    mend: &'static str,
    _items: std::marker::PhantomData<fn() -> T>,
}

pub type ByName<T> = std::collections::BTreeMap<String, Vec<T>>;

impl<T: serde::Serialize + serde::de::DeserializeOwned> Lists<T> {
    pub fn new(
        documents: std::sync::Arc<dyn Documents>,
        name: &'static str,
        what: &'static str,
        mend: &'static str,
    ) -> Self {
        Lists {
            documents,
            name,
            what,
            mend,
            _items: std::marker::PhantomData,
        }
    }

    pub fn documents(&self) -> &dyn Documents {
        &*self.documents
    }

    /// The lists in `bytes` (`None`: never written, none), or the damage named.
    pub fn parse(&self, bytes: Option<&[u8]>) -> io::Result<ByName<T>> {
        let Some(bytes) = bytes else {
            return Ok(ByName::new());
        };
        serde_json::from_slice(bytes).map_err(|e| {
            // Where and what kind of fault, never serde's words: they quote the values
            // (a push endpoint is a capability URL), and this error is shown to reviewers.
            let at = format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            );
            let place = self.documents.place(self.name);
            let why = format!("{place}: not {} ({at}); {}", self.what, self.mend);
            io::Error::new(io::ErrorKind::InvalidData, why)
        })
    }

    /// The lists as saved last.
    pub fn all(&self) -> io::Result<ByName<T>> {
        self.parse(self.documents.read(self.name)?.as_deref())
    }

    /// Changes the lists under the document's lock: `edit` changes them and answers whether
    /// to save, and what to answer.
    pub fn change<A: Send>(
        &self,
        mut edit: impl FnMut(&mut ByName<T>) -> (bool, A) + Send,
    ) -> io::Result<A> {
        let mut answer = None;
        self.documents.change(self.name, &mut |now| {
            let mut all = self.parse(now)?;
            let (save, a) = edit(&mut all);
            answer = Some(a);
            if !save {
                return Ok(None);
            }
            all.retain(|_, items| !items.is_empty());
            serde_json::to_vec_pretty(&all)
                .map(Some)
                .map_err(io::Error::other)
        })?;
        let place = self.documents.place(self.name);
        answer.ok_or_else(|| io::Error::other(format!("{place}: the change was not made")))
    }
}

/// One daemon's documents: files in data_dir, each written whole and atomically (owner-only),
/// changed one at a time.
#[derive(Debug)]
pub struct InDataDir {
    dir: PathBuf,
    changing: Mutex<()>,
}

impl InDataDir {
    pub fn new(data_dir: &Path) -> InDataDir {
        InDataDir {
            dir: data_dir.to_path_buf(),
            changing: Mutex::new(()),
        }
    }
}

impl Documents for InDataDir {
    fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn change(&self, name: &str, change: Change<'_>) -> io::Result<()> {
        let _one = self.changing.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.read(name)?;
        if let Some(next) = change(now.as_deref())? {
            crate::workspace::write_atomic(&self.dir.join(name), &next, Kind::Other)?;
        }
        Ok(())
    }

    fn place(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
