//! The names of each segment's facets (`/workspace/<name>`, `/kind/<kind>`) by ordinal, read
//! once per segment. Counting names the facets of the matches it counted: walking a segment's
//! facet dictionary for them on every query was 40 % of a query's CPU at 10,000 workspaces
//! (a thousand workspaces named each time). Segments never change, so their names are kept
//! while a searcher holds them: read when a reload makes a segment searchable (a tantivy
//! `Warmer`, off the queries' path), dropped when no searcher holds the segment any more.
//! The segment's column of facet ordinals is kept beside them: opening it per query was a
//! twentieth of the count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tantivy::columnar::StrColumn;
use tantivy::fastfield::FacetReader;
use tantivy::index::SegmentId;
use tantivy::schema::Facet;
use tantivy::{Searcher, SearcherGeneration, SegmentReader, Warmer};

/// A segment's facets by ordinal: root (`workspace`, `kind`) and value; `None` for one that
/// is not a root and a value.
pub(super) type Names = Vec<Option<(Arc<str>, Arc<str>)>>;

/// A segment's facets: the ordinals of each document's, and their names.
#[derive(Clone)]
pub(super) struct SegmentFacets {
    pub names: Arc<Names>,
    pub ords: StrColumn,
}

#[derive(Default)]
pub(super) struct FacetNames {
    by_segment: Mutex<HashMap<SegmentId, SegmentFacets>>,
}

impl FacetNames {
    /// `segment`'s facets, read now if no reload read them yet.
    pub(super) fn of(&self, segment: &SegmentReader) -> tantivy::Result<SegmentFacets> {
        let id = segment.segment_id();
        if let Some(facets) = self.lock().get(&id) {
            return Ok(facets.clone());
        }
        let facets = read(segment)?;
        self.lock().insert(id, facets.clone());
        Ok(facets)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SegmentId, SegmentFacets>> {
        self.by_segment.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The segment's column of facets, and one walk of its dictionary, in ordinal order.
fn read(segment: &SegmentReader) -> tantivy::Result<SegmentFacets> {
    let ords = segment.fast_fields().str("facets")?.ok_or_else(|| {
        tantivy::TantivyError::SchemaError("the facets' column is missing".into())
    })?;
    let facets = FacetReader::new(ords.clone());
    let mut names = Vec::with_capacity(facets.num_facets());
    let mut roots: Vec<Arc<str>> = Vec::new();
    let mut stream = facets.facet_dict().stream()?;
    while stream.advance() {
        let facet = Facet::from_encoded(stream.key().to_vec()).ok();
        let name = facet.as_ref().and_then(|f| {
            let mut path = f.to_path().into_iter();
            let (root, value) = (path.next()?, path.next()?);
            // Only a root and a value are a name: one name per ordinal, which the count's
            // choice by ordinal relies on (the index writes no deeper facets).
            if path.next().is_some() {
                return None;
            }
            let root = match roots.iter().find(|r| &***r == root) {
                Some(known) => known.clone(),
                None => {
                    roots.push(Arc::from(root));
                    roots[roots.len() - 1].clone()
                }
            };
            Some((root, Arc::from(value)))
        });
        names.push(name);
    }
    Ok(SegmentFacets {
        names: Arc::new(names),
        ords,
    })
}

impl Warmer for FacetNames {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for segment in searcher.segment_readers() {
            // An error is the queries' to report: a warmer that failed would fail the reload.
            let _ = self.of(segment);
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let live = super::warm::live_segments(live);
        self.lock().retain(|id, _| live.contains(id));
    }
}
