//! The one writer: a thread that owns tantivy's `IndexWriter`, fed by a bounded channel.
//! Updates are delete-then-add by document id; commits are batched (after `commit_every`
//! since the first uncommitted change, or every `BATCH_DOCS` documents), each followed by a
//! reload of the reader so searches see it at once. A log merge policy, plus a merge of the
//! smallest segments past `MAX_SEGMENTS`, keeps the segment count bounded.

use super::{doc_id, Doc, IndexError, SearchIndex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tantivy::indexer::{IndexWriterOptions, LogMergePolicy};
use tantivy::schema::Facet;
use tantivy::{DateTime, IndexWriter, TantivyDocument, Term};

/// Queue between the indexer and the writer: the indexer waits when it is full, nobody else.
const QUEUE: usize = 1024;
/// Documents, or bytes of text, after which a commit is made even if `commit_every` has not
/// passed. A commit waits for tantivy's own queue (up to 10,000 documents) to drain, so the
/// bytes bound also bounds the memory that queue holds during a full pass. Each commit makes
/// a segment (to merge later) and stalls the pipeline while it drains: small documents
/// commit by the bytes bound (32,000 of 1 KB), not every 10,000.
const BATCH_DOCS: usize = 50_000;
const BATCH_BYTES: usize = 32 << 20;
/// Longest a commit waits while changes keep streaming in.
const BULK_COMMIT: Duration = Duration::from_secs(5);
/// Past this many segments, the smallest are merged even if the merge policy would wait.
const MAX_SEGMENTS: usize = 40;

/// A change to the index.
pub enum Op {
    /// Adds a document, replacing the one of the same id.
    Put(Box<Doc>),
    /// Adds a document the index does not hold: no delete to apply (a delete is resolved
    /// against every segment at each commit, which a full pass would pay per document).
    Add(Box<Doc>),
    Delete(String),
    /// Commit what is pending now, then answer.
    Flush(SyncSender<()>),
}

/// Counters the writer keeps, for metrics and reports.
#[derive(Default, Debug)]
pub struct Stats {
    pub commits: AtomicU64,
    pub put: AtomicU64,
    pub deleted: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
}

/// A handle to send changes to the writer thread; the thread ends when every handle is dropped.
#[derive(Clone)]
pub struct Writer {
    tx: SyncSender<Op>,
    pub stats: Arc<Stats>,
}

impl Writer {
    /// Takes the index's writer lock and starts the thread. `budget`: tantivy's memory budget
    /// in bytes (split over its indexing threads).
    pub fn spawn(
        index: Arc<SearchIndex>,
        budget: usize,
        commit_every: Duration,
    ) -> Result<(Writer, std::thread::JoinHandle<()>), IndexError> {
        // One indexing thread and one merge thread: the daemon shares its machine with
        // ingest and the pages, and every merge thread holds buffers of its own.
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(budget.max(15_000_000))
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer: IndexWriter =
            index
                .index
                .writer_with_options(options)
                .map_err(|source| match source {
                    tantivy::TantivyError::LockFailure(..) => IndexError::Busy(index.dir.clone()),
                    source => IndexError::Tantivy {
                        dir: index.dir.clone(),
                        source,
                    },
                })?;
        // From here on the index's files are written without syncs (see `unsynced`).
        super::unsynced::mark(&index.dir).map_err(|source| IndexError::Io {
            dir: index.dir.clone(),
            source,
        })?;
        let mut policy = LogMergePolicy::default();
        // Deleted documents (every update leaves one) are merged away before they pile up.
        policy.set_del_docs_ratio_before_merge(0.3);
        writer.set_merge_policy(Box::new(policy));
        let (tx, rx) = sync_channel(QUEUE);
        let stats = Arc::new(Stats::default());
        let state = Thread {
            index,
            writer,
            rx,
            stats: stats.clone(),
            commit_every,
            pending: 0,
            first_pending: None,
            pending_bytes: 0,
            peeked: None,
        };
        let handle = std::thread::Builder::new()
            .name("baton-index-writer".into())
            .spawn(move || state.run())
            .map_err(|source| IndexError::Io {
                dir: Default::default(),
                source,
            })?;
        Ok((Writer { tx, stats }, handle))
    }

    /// Sends a change, waiting while the queue is full. `false`: the writer is gone.
    pub fn send(&self, op: Op) -> bool {
        self.tx.send(op).is_ok()
    }

    /// Sends a change unless the queue is full.
    pub fn try_send(&self, op: Op) -> Result<(), TrySendError<Op>> {
        self.tx.try_send(op)
    }

    /// Commits everything sent so far and waits until it is searchable.
    pub fn flush(&self) -> bool {
        let (tx, rx) = sync_channel(1);
        self.send(Op::Flush(tx)) && rx.recv().is_ok()
    }
}

struct Thread {
    index: Arc<SearchIndex>,
    writer: IndexWriter,
    rx: Receiver<Op>,
    stats: Arc<Stats>,
    commit_every: Duration,
    pending: usize,
    first_pending: Option<Instant>,
    pending_bytes: usize,
    /// An op taken from the queue to see whether it was empty, to apply next.
    peeked: Option<Op>,
}

impl Thread {
    fn run(mut self) {
        loop {
            let wait = self.first_pending.map_or(Duration::from_secs(3600), |t| {
                (t + self.commit_every).saturating_duration_since(Instant::now())
            });
            let next = match self.peeked.take() {
                Some(op) => Ok(op),
                None => self.rx.recv_timeout(wait),
            };
            match next {
                Ok(Op::Flush(done)) => {
                    self.commit();
                    let _ = done.send(());
                }
                Ok(op) => self.apply(op),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // While changes stream in (a full pass), commits wait for a batch of documents or
            // BULK_COMMIT: each commit makes a segment, and a segment per tick would leave the
            // merges more work than the indexing. Once the queue is idle, `commit_every` holds.
            let age = self.first_pending.map(|t| t.elapsed());
            let streaming = !self.rx_is_empty();
            let due =
                age.is_some_and(|a| a >= self.commit_every && (!streaming || a >= BULK_COMMIT));
            if due || self.pending >= BATCH_DOCS || self.pending_bytes >= BATCH_BYTES {
                self.commit();
            }
        }
        self.commit();
        if let Err(e) = self.writer.wait_merging_threads() {
            tracing::warn!(error = %e, "search index merges did not finish");
        }
        // Merges over and the lock released: every file is final, to sync once.
        if let Err(e) = super::unsynced::settle(&self.index.dir) {
            tracing::warn!(dir = %self.index.dir.display(), error = %e, "cannot sync the search index; a crash of the machine before the next stop would have it built again");
        }
    }

    /// Whether nothing more is queued right now.
    fn rx_is_empty(&mut self) -> bool {
        match self.rx.try_recv() {
            Ok(op) => {
                self.peeked = Some(op);
                false
            }
            Err(_) => true,
        }
    }

    fn apply(&mut self, op: Op) {
        let fields = self.index.fields;
        match op {
            Op::Put(doc) => {
                let id = self.id_of(&doc);
                self.writer
                    .delete_term(Term::from_field_text(fields.id, &id));
                self.add(&id, &doc);
            }
            Op::Add(doc) => {
                let id = self.id_of(&doc);
                self.add(&id, &doc);
            }
            Op::Delete(id) => {
                self.writer
                    .delete_term(Term::from_field_text(fields.id, &id));
                self.stats.deleted.fetch_add(1, Ordering::Relaxed);
            }
            Op::Flush(_) => unreachable!("handled by run"),
        }
        self.pending += 1;
        self.first_pending.get_or_insert_with(Instant::now);
    }

    fn id_of(&self, doc: &Doc) -> String {
        doc_id(
            doc.kind.expect("the indexer sets the kind"),
            &doc.workspace,
            &doc.path,
        )
    }

    fn add(&mut self, id: &str, doc: &Doc) {
        let bytes = doc.body.len() + doc.other.len();
        self.stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.pending_bytes += bytes;
        let fields = self.index.fields;
        if let Err(e) = self.writer.add_document(to_tantivy(&fields, id, doc)) {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, path = %doc.path, "cannot index a document");
        }
        self.stats.put.fetch_add(1, Ordering::Relaxed);
    }

    fn commit(&mut self) {
        if self.first_pending.is_none() {
            return;
        }
        self.pending = 0;
        self.pending_bytes = 0;
        self.first_pending = None;
        if let Err(e) = self.writer.commit() {
            self.stats.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "cannot commit the search index; the next commit retries");
            return;
        }
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.index.reader.reload() {
            tracing::warn!(error = %e, "cannot reload the search reader");
        }
        self.bound_segments();
    }

    /// Merges the smallest segments when there are too many (merges run in the background).
    fn bound_segments(&mut self) {
        let Ok(mut metas) = self.index.index.searchable_segment_metas() else {
            return;
        };
        if metas.len() <= MAX_SEGMENTS {
            return;
        }
        metas.sort_by_key(|m| m.num_docs());
        let ids: Vec<_> = metas
            .iter()
            .take(metas.len() - MAX_SEGMENTS / 2)
            .map(|m| m.id())
            .collect();
        // The future is not awaited: the merge finishes on tantivy's merge thread.
        drop(self.writer.merge(&ids));
    }
}

fn to_tantivy(f: &super::schema::Fields, id: &str, doc: &Doc) -> TantivyDocument {
    let mut out = TantivyDocument::default();
    let kind = doc.kind.expect("the indexer sets the kind").as_str();
    out.add_text(f.id, id);
    out.add_u64(f.fp, super::fp_hash(&doc.fp));
    out.add_text(f.workspace, &doc.workspace);
    out.add_text(f.kind, kind);
    out.add_text(f.path, &doc.path);
    for (field, value) in [
        (f.key, &doc.key),
        (f.task_id, &doc.task_id),
        (f.agent, &doc.agent),
        (f.outcome, &doc.outcome),
        (f.trigger, &doc.trigger),
    ] {
        if let Some(v) = value {
            out.add_text(field, v);
        }
    }
    if let Some(r) = doc.revision {
        out.add_u64(f.revision, r);
    }
    out.add_date(f.modified, DateTime::from_timestamp_secs(doc.modified));
    out.add_text(f.title, &doc.title);
    out.add_text(f.body, &doc.body);
    if !doc.other.is_empty() {
        out.add_text(f.other, &doc.other);
    }
    out.add_facet(
        f.facets,
        Facet::from_path(["workspace", doc.workspace.as_str()]),
    );
    out.add_facet(f.facets, Facet::from_path(["kind", kind]));
    out
}
