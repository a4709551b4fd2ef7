//! Full-text search over the workspaces with tantivy: artifacts (`inbox/`, `approved/`),
//! handoffs (every revision), checkpoints and decisions. The index lives in
//! `data_dir/search/v{VERSION}/` and is a cache: missing, unreadable or of another schema
//! version, it is set aside and built again from the sources, in the background.
//!
//! One writer thread owns tantivy's `IndexWriter` and is fed by a bounded channel
//! (`writer`); it commits in batches and reloads the one `IndexReader`, so a search (a
//! `Searcher` per query, `search`) never waits on indexing. What to index is decided by the
//! caller (`app::search`), which knows the workspaces; this module knows only tantivy.
//! This is the only module that imports tantivy.

mod any_field;
mod ceiling;
mod count;
mod exclude;
mod facet_names;
mod known;
pub mod query;
mod schema;
pub mod search;
mod search_limit;
mod snippets;
mod unsynced;
mod warm;
pub mod writer;

pub use count::{cut as cut_facet, COUNT_LIMIT};
pub use query::Filters;
pub use schema::VERSION;
pub use search::{Facet, Hit, Hits, Request};
pub use writer::{Op, Writer};

use schema::Fields;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tantivy::{Index, IndexReader, ReloadPolicy, Warmer};

/// What an indexed document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Artifact,
    Handoff,
    Checkpoint,
    Decision,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Artifact,
        Kind::Handoff,
        Kind::Checkpoint,
        Kind::Decision,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Artifact => "artifact",
            Kind::Handoff => "handoff",
            Kind::Checkpoint => "checkpoint",
            Kind::Decision => "decision",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One document to index. `path` is relative to the workspace (for handoffs and decisions,
/// the record's published copy under `.baton/handoffs/`), so (kind, workspace, path) is unique.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    pub kind: Option<Kind>,
    pub workspace: String,
    pub path: String,
    /// Changes whenever the source changes (size and mtime, a digest, a decision's time).
    pub fp: String,
    pub key: Option<String>,
    pub task_id: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub trigger: Option<String>,
    pub revision: Option<u64>,
    /// Unix seconds.
    pub modified: i64,
    pub title: String,
    /// What a person reads, shown in snippets.
    pub body: String,
    /// Searched, never shown (a record's names, times and digests).
    pub other: String,
}

/// The identity of a document: what an update deletes before it adds.
pub fn doc_id(kind: Kind, workspace: &str, path: &str) -> String {
    // NUL: no workspace name or path can hold one, so the parts never run together.
    format!("{}\0{workspace}\0{path}", kind.as_str())
}

/// What the index keeps of a fingerprint: 64 bits of its SHA-256 (stable across versions and
/// processes, as the index outlives both; a column of numbers costs the writer far less than
/// one of strings).
pub fn fp_hash(fp: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(fp.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("a digest has 32 bytes"))
}

/// The workspace and path of a document id, if it is one.
pub fn split_id(id: &str) -> Option<(Kind, &str, &str)> {
    let mut parts = id.splitn(3, '\0');
    let kind = Kind::parse(parts.next()?)?;
    Some((kind, parts.next()?, parts.next()?))
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("the search index at {dir} cannot be used: {source}")]
    Tantivy {
        dir: PathBuf,
        source: tantivy::TantivyError,
    },
    #[error("the search index at {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("there is no search index at {0} yet; start the daemon or run `baton reindex`")]
    Missing(PathBuf),
    #[error(
        "another process is writing the search index at {0} (a running daemon or `baton reindex`)"
    )]
    Busy(PathBuf),
}

/// The index and its one reader. Cheap to share behind an `Arc`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    dir: PathBuf,
    /// Held here: the reader keeps only weak handles on its warmers.
    warm: Arc<warm::Warm>,
    facet_names: Arc<facet_names::FacetNames>,
    ceilings: Arc<ceiling::Ceilings>,
}

/// The folder of the index of the current schema version.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("search").join(format!("v{VERSION}"))
}

impl SearchIndex {
    /// Opens the index, or makes a new empty one when it is missing, unreadable or of another
    /// schema. The `String` says why a new one was made (to log, and to fill it).
    pub fn open(data_dir: &Path) -> Result<(SearchIndex, Option<String>), IndexError> {
        let dir = index_dir(data_dir);
        remove_other_versions(data_dir);
        if dir.join("meta.json").exists() {
            match SearchIndex::open_existing(&dir) {
                Ok(found) => return Ok((found, None)),
                Err(e) => {
                    let why = format!("{e}");
                    std::fs::remove_dir_all(&dir).map_err(|source| IndexError::Io {
                        dir: dir.clone(),
                        source,
                    })?;
                    return Ok((SearchIndex::create(&dir)?, Some(why)));
                }
            }
        }
        let fresh = SearchIndex::create(&dir)?;
        Ok((fresh, Some("no search index yet".into())))
    }

    /// Makes a new, empty index in `dir`, removing whatever is there.
    pub fn create_in(dir: &Path) -> Result<SearchIndex, IndexError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|source| IndexError::Io {
                dir: dir.to_path_buf(),
                source,
            })?;
        }
        SearchIndex::create(dir)
    }

    /// Opens the index in `dir` (which must be of this schema).
    pub fn open_in(dir: &Path) -> Result<SearchIndex, IndexError> {
        SearchIndex::open_existing(dir)
    }

    /// Opens the index as it is, for reading only (`baton search`): never makes or changes one.
    pub fn open_read_only(data_dir: &Path) -> Result<SearchIndex, IndexError> {
        let dir = index_dir(data_dir);
        if !dir.join("meta.json").exists() {
            return Err(IndexError::Missing(dir));
        }
        SearchIndex::open_existing(&dir)
    }

    fn open_existing(dir: &Path) -> Result<SearchIndex, IndexError> {
        let fail = |source| IndexError::Tantivy {
            dir: dir.to_path_buf(),
            source,
        };
        if let Some(why) = unsynced::lost_writes(dir) {
            return Err(fail(tantivy::TantivyError::SystemError(why)));
        }
        let directory = unsynced::Unsynced::open(dir)
            .map_err(|e| fail(tantivy::TantivyError::SystemError(e.to_string())))?;
        let index = Index::open(directory).map_err(fail)?;
        let (schema, fields) = schema::build();
        if index.schema() != schema {
            return Err(fail(tantivy::TantivyError::SchemaError(
                "its fields are not this version's".into(),
            )));
        }
        SearchIndex::with_reader(index, fields, dir)
    }

    fn create(dir: &Path) -> Result<SearchIndex, IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let fail = |source| IndexError::Tantivy {
            dir: dir.to_path_buf(),
            source,
        };
        let directory = unsynced::Unsynced::open(dir)
            .map_err(|e| fail(tantivy::TantivyError::SystemError(e.to_string())))?;
        let index =
            Index::create(directory, schema, tantivy::IndexSettings::default()).map_err(fail)?;
        let made = SearchIndex::with_reader(index, fields, dir)?;
        // Empty: every segment it will hold is read by the reload that makes it searchable.
        made.warm_files();
        Ok(made)
    }

    fn with_reader(index: Index, fields: Fields, dir: &Path) -> Result<SearchIndex, IndexError> {
        // Manual: the writer thread reloads right after each commit, so a search sees a
        // commit at once and never pays for a reload itself, nor (the warmer, run by the
        // reload before the new searcher is published) for reading new segments cold.
        let warm = Arc::new(warm::Warm::new(fields));
        let warmer: Arc<dyn Warmer> = warm.clone();
        let facet_names = Arc::new(facet_names::FacetNames::default());
        let names: Arc<dyn Warmer> = facet_names.clone();
        let ceilings = Arc::new(ceiling::Ceilings::default());
        let kept: Arc<dyn Warmer> = ceilings.clone();
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .warmers(vec![
                Arc::downgrade(&warmer),
                Arc::downgrade(&names),
                Arc::downgrade(&kept),
            ])
            .try_into()
            .map_err(|source| IndexError::Tantivy {
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            dir: dir.to_path_buf(),
            warm,
            facet_names,
            ceilings,
        })
    }

    /// Whether the index on disk holds other segments or deletes than this reader reads:
    /// another process (`baton reindex`) committed or swapped the index since it was opened
    /// (errors count as changed, so the caller opens it again and sees them).
    pub fn changed_on_disk(&self) -> bool {
        let Ok(on_disk) = self.index.searchable_segment_metas() else {
            return true;
        };
        let mut disk: Vec<_> = on_disk
            .iter()
            .map(|m| (m.id(), m.num_deleted_docs()))
            .collect();
        let searcher = self.reader.searcher();
        let mut read: Vec<_> = searcher
            .segment_readers()
            .iter()
            .map(|r| (r.segment_id(), r.num_deleted_docs()))
            .collect();
        disk.sort();
        read.sort();
        disk != read
    }

    /// Reads the files of the segments searchable now that no reload has read yet, so the
    /// first queries do not (see `warm`); the reloads after this read new segments themselves.
    pub fn warm_files(&self) {
        self.warm.touch_new(&self.reader.searcher());
        self.warm
            .armed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes of segment files the warmer has read ahead of queries since this was opened.
    pub fn warmed_bytes(&self) -> u64 {
        self.warm.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Documents searchable now.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Segments whose ranking stopped at the word's best score there, since opened.
    pub fn ceiling_stops(&self) -> u64 {
        self.ceilings.stops()
    }

    /// Segments searchable now (kept bounded by the merge policy).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Bytes the index takes on disk.
    pub fn size_bytes(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Every document's id and fingerprint's hash (`fp_hash`), as last committed.
    pub fn known(&self) -> std::collections::HashMap<String, u64> {
        known::read(&self.reader.searcher(), &self.fields)
    }
}

/// An index of an older schema version is a cache nobody will read again.
fn remove_other_versions(data_dir: &Path) {
    let current = format!("v{VERSION}");
    let Ok(entries) = std::fs::read_dir(data_dir.join("search")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Only other versions (`v0`, `v2`): `v1.next` may be a rebuild under way elsewhere.
        let version = name
            .strip_prefix('v')
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if version && name != current && entry.path().is_dir() {
            tracing::info!(dir = %entry.path().display(), "removing a search index of another schema version");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
