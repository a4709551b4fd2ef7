//! Warming each new searcher before searches use it. tantivy runs a `Warmer` inside a reload
//! (and when a reader is made), before the new searcher is published, so the work here is paid
//! by the writer thread or by whoever opens an index, never by a query.
//!
//! What the first queries on a new index otherwise pay: page faults on the segment files every
//! query reads (postings, positions, the term dictionaries, fast columns and field norms),
//! read from disk when the page cache no longer holds them (an index just rebuilt beside a
//! busy machine's other work, or one opened at start) and mapped into the process one fault at
//! a time otherwise; and the per-segment readers tantivy opens on first use. At a million
//! small documents the first queries after `baton reindex` took 100-160 ms against a median
//! of 2 ms. A segment's files are touched once, when it first becomes searchable (a commit's
//! segment is small; a merge's is touched once, on the reload after it); the doc store, read
//! only for the page of hits shown, is left to the queries.
//!
//! A reader's first searcher (an index opened) is not touched by the reload hook: opening
//! would wait for it. Its owner touches it when it suits (`SearchIndex::warm_files`): the
//! daemon in the background at start, a rebuild before it puts the new index in place.
//! `baton search`'s read-only index is never touched (one query reads less than all that).

use super::schema::Fields;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use tantivy::directory::Directory;
use tantivy::index::SegmentId;
use tantivy::{Searcher, SearcherGeneration, Warmer};

/// The segment files every query reads (`SegmentComponent`'s extensions): postings,
/// positions (phrases), terms, fast columns (dates, facets), field norms (BM25).
const COMPONENTS: [&str; 5] = ["idx", "pos", "term", "fast", "fieldnorm"];
const PAGE: usize = 4096;
/// Segments larger than this are touched beside the reload, not inside it: a merge's segment
/// at a million documents is hundreds of MB, and reading it before the new searcher goes live
/// would hold back every commit that reload makes searchable.
const TOUCH_INSIDE_RELOAD: u64 = 16 * 1024 * 1024;

pub(super) struct Warm {
    fields: Fields,
    /// Segments whose files were touched already (while they are in a live searcher).
    touched: Mutex<HashSet<SegmentId>>,
    /// Bytes touched since start (for tests and reports).
    pub bytes: AtomicU64,
    /// Whether reloads touch new segments' files (not while the reader is being made).
    pub armed: AtomicBool,
}

impl Warm {
    pub(super) fn new(fields: Fields) -> Warm {
        Warm {
            fields,
            touched: Mutex::new(HashSet::new()),
            bytes: AtomicU64::new(0),
            armed: AtomicBool::new(false),
        }
    }

    /// Touches the files of the searcher's segments not touched yet.
    pub(super) fn touch_new(&self, searcher: &Searcher) {
        for segment in searcher.segment_readers() {
            if self.first_time(segment.segment_id()) {
                let n = touch_segment(searcher, segment.segment_id());
                self.bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// As `touch_new`, inside a reload: small segments (a commit's) now, large ones (a
    /// merge's) on a thread of their own so the reload publishes its searcher at once.
    fn touch_new_in_reload(&self, searcher: &Searcher) {
        let mut large = Vec::new();
        for segment in searcher.segment_readers() {
            let id = segment.segment_id();
            if !self.first_time(id) {
                continue;
            }
            if segment_bytes(searcher, id) > TOUCH_INSIDE_RELOAD {
                large.push(id);
            } else {
                let n = touch_segment(searcher, id);
                self.bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
        if large.is_empty() {
            return;
        }
        let searcher = searcher.clone();
        let spawned = std::thread::Builder::new()
            .name("search-warm".into())
            .spawn(move || {
                for id in large {
                    touch_segment(&searcher, id);
                }
            });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "segments left cold: no thread to touch them");
        }
    }

    fn first_time(&self, id: SegmentId) -> bool {
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id)
    }
}

impl Warmer for Warm {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        let f = &self.fields;
        for segment in searcher.segment_readers() {
            // Opened per searcher and cached in its segment readers: cheap, but each first
            // query would open them otherwise. Errors are the queries' to report: a warmer
            // that failed would fail the reload, and no commit would become searchable.
            for field in [f.title, f.body, f.other] {
                let _ = segment.inverted_index(field);
                let _ = segment.get_fieldnorms_reader(field);
            }
            let _ = segment.facet_reader("facets");
            let _ = segment.fast_fields().date("modified");
        }
        if self.armed.load(Ordering::Relaxed) {
            self.touch_new_in_reload(searcher);
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let live = live_segments(live);
        self.touched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id| live.contains(id));
    }
}

/// The segments some live searcher still reads (what a warmer's `garbage_collect` keeps).
pub(super) fn live_segments(live: &[&SearcherGeneration]) -> HashSet<SegmentId> {
    live.iter()
        .flat_map(|g| g.segments().keys().copied())
        .collect()
}

/// The bytes of a segment's files that `touch_segment` reads.
fn segment_bytes(searcher: &Searcher, id: SegmentId) -> u64 {
    let dir = searcher.index().directory();
    COMPONENTS
        .iter()
        .filter_map(|c| dir.open_read(&component_path(id, c)).ok())
        .map(|slice| tantivy::HasLen::len(&slice) as u64)
        .sum()
}

fn component_path(id: SegmentId, component: &str) -> std::path::PathBuf {
    format!("{}.{component}", id.uuid_string()).into()
}

/// Touches one segment's files; returns the bytes read. A segment may lack a component; a
/// file that cannot be read is for the query to report, not the warmer.
fn touch_segment(searcher: &Searcher, id: SegmentId) -> u64 {
    let dir = searcher.index().directory();
    let mut read = 0;
    for component in COMPONENTS {
        let Ok(slice) = dir.open_read(&component_path(id, component)) else {
            continue;
        };
        let Ok(bytes) = slice.read_bytes() else {
            continue;
        };
        touch(bytes.as_slice());
        read += bytes.len() as u64;
    }
    read
}

/// Reads a byte of every page: the memory-mapped file is read into the page cache and mapped
/// into this process (the kernel maps the neighbouring cached pages with each fault).
fn touch(bytes: &[u8]) {
    let mut sum = 0u8;
    for page in bytes.chunks(PAGE) {
        sum ^= page[0];
    }
    std::hint::black_box(sum);
}
