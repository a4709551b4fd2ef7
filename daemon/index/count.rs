//! Counting the matches of a query and their facets, up to a bound: a page of hits never pays
//! for a pass over every match. Past the bound, the count is a lower bound and the total is
//! estimated from how far into the index the bound was reached (documents are spread over
//! the doc-id space roughly alike, so the share of it counted is the share of matches seen).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use tantivy::query::{EnableScoring, Query};
use tantivy::schema::Facet as TantivyFacet;
use tantivy::{DocSet, Searcher, TERMINATED};

/// Matches counted exactly; past this, the count is a lower bound (with an estimate). At a
/// million documents, counting up to 10,000 matches and their facets took about a fifth of
/// the daemon's time over the bench's queries (the union over fields walked a second time,
/// the facet columns read per match); a thousand says "many" as well. Paging reaches `MAX_OFFSET` (10,000) alike:
/// the page is ranked on its own.
pub const COUNT_LIMIT: u64 = 1_000;

/// Counts of the matches counted (not only a page) by value.
pub type Facet = BTreeMap<String, u64>;

/// The counts of the matches seen.
#[derive(Debug, Default)]
pub(super) struct Counted {
    pub total: u64,
    /// The bound stopped the count: `total` and the facets are lower bounds.
    pub bounded: bool,
    /// The total extrapolated from the share of the index counted (when `bounded`).
    pub estimate: Option<u64>,
    /// Facet root ("workspace", "kind") -> value -> count.
    pub facets: HashMap<String, Facet>,
    /// The deadline passed before every segment was counted.
    pub cut: bool,
}

/// Counts the live matches of `query` and their facets, stopping at `limit`.
pub(super) fn count(
    searcher: &Searcher,
    query: &dyn Query,
    limit: u64,
    deadline: Instant,
) -> tantivy::Result<Counted> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let space: u64 = searcher
        .segment_readers()
        .iter()
        .map(|s| u64::from(s.max_doc()))
        .sum();
    let mut out = Counted::default();
    // Doc ids passed in segments counted whole, for the estimate.
    let mut passed = 0u64;
    for segment in searcher.segment_readers() {
        if Instant::now() >= deadline {
            out.cut = true;
            break;
        }
        let facets = segment.facet_reader("facets")?;
        let mut by_ord = vec![0u64; facets.num_facets()];
        let alive = segment.alive_bitset();
        let mut scorer = weight.scorer(segment, 1.0)?;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                if out.total == limit {
                    // One match more than the bound: there are more than `limit`.
                    out.bounded = true;
                    passed += u64::from(doc);
                    break;
                }
                for ord in facets.facet_ords(doc) {
                    by_ord[ord as usize] += 1;
                }
                out.total += 1;
            }
            doc = scorer.advance();
        }
        name_facets(&facets, &by_ord, &mut out.facets)?;
        if out.bounded {
            break;
        }
        passed += u64::from(segment.max_doc());
    }
    if out.bounded {
        let share = passed.max(1) as f64 / space.max(1) as f64;
        out.estimate = Some(((out.total as f64 / share).round() as u64).max(out.total + 1));
    }
    Ok(out)
}

/// Adds one segment's counts by facet ordinal to `out`, by facet root and value. The ords are
/// named in one sorted walk of the dictionary: one lookup each would decode a block of it per
/// value (a thousand workspaces cost milliseconds).
fn name_facets(
    facets: &tantivy::fastfield::FacetReader,
    by_ord: &[u64],
    out: &mut HashMap<String, Facet>,
) -> tantivy::Result<()> {
    let counted: Vec<(u64, u64)> = by_ord
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(ord, n)| (ord as u64, *n))
        .collect();
    let mut counts = counted.iter().map(|(_, n)| *n);
    let ords = counted.iter().map(|(ord, _)| *ord);
    facets
        .facet_dict()
        .sorted_ords_to_term_cb(ords, |encoded| {
            let n = counts.next().unwrap_or(0);
            let Ok(facet) = TantivyFacet::from_encoded(encoded.to_vec()) else {
                return Ok(());
            };
            let mut path = facet.to_path().into_iter();
            if let (Some(root), Some(value)) = (path.next(), path.next()) {
                *out.entry(root.to_string())
                    .or_default()
                    .entry(value.to_string())
                    .or_default() += n;
            }
            Ok(())
        })?;
    Ok(())
}
