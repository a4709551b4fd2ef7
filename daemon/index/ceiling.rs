//! The most a word can score in a segment, to the bit, so that ranking a union of two fields
//! stops reading a segment once the page's lowest score reaches the sum of their bests. tantivy's block-max WAND over a
//! union of fields skips a block whose best score cannot beat the page, but it decodes the
//! block to move past it (its shallow seek is crate-private). At 110,000 handoffs whose titles
//! and bodies all hold `round`, alike in length, the page of 20 was full after a few documents
//! of each segment, all at its best score, and every block of both fields was then decoded
//! for nothing: 45 % of a search's instructions.
//!
//! A word's best score in a segment depends on index-wide statistics (its idf, the average
//! length), which change with every commit; the (length, count) pairs it is reached from do
//! not. Those are read once per segment and word, on first use, and kept while a searcher
//! holds the segment (a tantivy `Warmer`, for its garbage collection only).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tantivy::index::SegmentId;
use tantivy::postings::Postings;
use tantivy::query::Bm25Weight;
use tantivy::schema::IndexRecordOption;
use tantivy::TERMINATED;
use tantivy::{DocSet, Score, Searcher, SearcherGeneration, SegmentReader, Term, Warmer};

/// The counts up to which a higher count always scores higher in f32 as it does in reals, so
/// that the highest count of a length stands for the others. BM25 gives count `t` at length
/// norm `n` the factor `t / (t + n)`, and `n >= k1 * (1 - b) = 0.3`: up to 64, consecutive
/// counts' factors differ by at least 7e-5 of their value, hundreds of f32's relative
/// rounding steps (6e-8). A segment where the word occurs more often in one document has no
/// ceiling (tantivy alone ranks it).
const EXACT_COUNT: u32 = 64;

/// Words kept at most (segment and word), a few hundred bytes each (64 pairs at most); then
/// they are read anew. A word is read in one pass over its postings in the segment, about
/// what one ranking of it without a ceiling costs.
const KEPT: usize = 10_000;

/// (fieldnorm id, count): the pairs no other pair of the segment beats on both (shorter and
/// more often), from which the word's best score in the segment is reached.
pub(super) type Pairs = Arc<[(u8, u32)]>;

#[derive(Default)]
pub(super) struct Ceilings {
    by_word: Mutex<HashMap<(SegmentId, Term), Option<Pairs>>>,
    /// Segments whose ranking stopped at their ceiling.
    stops: AtomicU64,
}

impl Ceilings {
    /// The pairs of `term` in `segment`, read now if no query read them yet; `None`: no exact
    /// ceiling (a count above `EXACT_COUNT`, or the word is not in the segment).
    pub(super) fn pairs(
        &self,
        segment: &SegmentReader,
        term: &Term,
    ) -> tantivy::Result<Option<Pairs>> {
        let key = (segment.segment_id(), term.clone());
        if let Some(pairs) = self.lock().get(&key) {
            return Ok(pairs.clone());
        }
        let pairs = read(segment, term)?;
        let mut kept = self.lock();
        if kept.len() >= KEPT {
            kept.clear();
        }
        kept.insert(key, pairs.clone());
        Ok(pairs)
    }

    /// A segment's ranking stopped at its ceiling.
    pub(super) fn stopped(&self) {
        self.stops.fetch_add(1, Ordering::Relaxed);
    }

    /// Segments whose ranking stopped at their ceiling, since the index was opened.
    pub(super) fn stops(&self) -> u64 {
        self.stops.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(SegmentId, Term), Option<Pairs>>> {
        self.by_word.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The most `weight` scores any document of `pairs`: the score tantivy's term scorer gives it,
/// to the last bit (the same function of the same weight).
pub(super) fn best(weight: &Bm25Weight, pairs: &[(u8, u32)]) -> Score {
    pairs
        .iter()
        .map(|&(norm, count)| weight.score(norm, count))
        .fold(0.0, Score::max)
}

/// One pass over the word's postings (deleted documents included: the ceiling stays one).
fn read(segment: &SegmentReader, term: &Term) -> tantivy::Result<Option<Pairs>> {
    let field = term.field();
    let index = segment.inverted_index(field)?;
    let Some(mut postings) = index.read_postings(term, IndexRecordOption::WithFreqs)? else {
        return Ok(None);
    };
    let norms = segment.get_fieldnorms_reader(field)?;
    // The highest count at each length.
    let mut most = [0u32; 256];
    let mut doc = postings.doc();
    while doc != TERMINATED {
        let count = postings.term_freq();
        if count > EXACT_COUNT {
            return Ok(None);
        }
        let norm = &mut most[usize::from(norms.fieldnorm_id(doc))];
        *norm = (*norm).max(count);
        doc = postings.advance();
    }
    // Shortest first: a pair is kept when it counts more than every shorter one.
    let mut pairs = Vec::new();
    let mut highest = 0;
    for norm in 0..=u8::MAX {
        let count = most[usize::from(norm)];
        if count > highest {
            highest = count;
            pairs.push((norm, count));
        }
    }
    Ok(Some(pairs.into()))
}

impl Warmer for Ceilings {
    fn warm(&self, _: &Searcher) -> tantivy::Result<()> {
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let live = super::warm::live_segments(live);
        self.lock().retain(|(id, _), _| live.contains(id));
    }
}
