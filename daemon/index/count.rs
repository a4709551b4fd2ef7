//! Counting the matches of a query and their facets, up to a bound: a page of hits never pays
//! for a pass over every match. Past the bound, the count is a lower bound and the total is
//! estimated from how far into the index the bound was reached (documents are spread over
//! the doc-id space roughly alike, so the share of it counted is the share of matches seen).

use super::facet_names::{FacetNames, Names};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tantivy::query::{EnableScoring, Query};
use tantivy::{DocSet, Searcher, TERMINATED};

/// Matches counted exactly; past this, the count is a lower bound (with an estimate). At a
/// million documents, counting up to 10,000 matches and their facets took about a fifth of
/// the daemon's time over the bench's queries (the union over fields walked a second time,
/// the facet columns read per match); a thousand says "many" as well. Paging reaches `MAX_OFFSET` (10,000) alike:
/// the page is ranked on its own.
pub const COUNT_LIMIT: u64 = 1_000;

/// Values a facet shows at most: those with the most matches counted. At 10,000 workspaces
/// a common word's thousand matches came from a thousand workspaces, and naming, sorting,
/// sending and dropping all of them was half of a query's CPU (a page lists twenty hits).
pub const FACET_VALUES: usize = 50;

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
    /// Facet root ("workspace", "kind") -> value -> count, `FACET_VALUES` values at most.
    pub facets: HashMap<String, Facet>,
    /// A facet had more values than it shows.
    pub facets_cut: bool,
    /// The deadline passed before every segment was counted.
    pub cut: bool,
}

/// Counts the live matches of `query` and their facets, stopping at `limit`.
pub(super) fn count(
    searcher: &Searcher,
    query: &dyn Query,
    limit: u64,
    deadline: Instant,
    names: &FacetNames,
) -> tantivy::Result<Counted> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let space: u64 = searcher
        .segment_readers()
        .iter()
        .map(|s| u64::from(s.max_doc()))
        .sum();
    let mut out = Counted::default();
    let mut counted = Vec::new();
    // One buffer for every segment's ordinals: a match has one or two facets.
    let mut ords = Vec::with_capacity(2 * limit.min(100_000) as usize);
    // Doc ids passed in segments counted whole, for the estimate.
    let mut passed = 0u64;
    for segment in searcher.segment_readers() {
        if Instant::now() >= deadline {
            out.cut = true;
            break;
        }
        let facets = names.of(segment)?;
        let alive = segment.alive_bitset();
        let mut scorer = weight.scorer(segment, 1.0)?;
        let mut doc = scorer.doc();
        ords.clear();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                if out.total == limit {
                    // One match more than the bound: there are more than `limit`.
                    out.bounded = true;
                    passed += u64::from(doc);
                    break;
                }
                ords.extend(facets.ords.term_ords(doc));
                out.total += 1;
            }
            doc = scorer.advance();
        }
        if !ords.is_empty() {
            counted.push(SegmentCounts::tally(facets.names, &mut ords));
        }
        if out.bounded {
            break;
        }
        passed += u64::from(segment.max_doc());
    }
    (out.facets, out.facets_cut) = most_counted(&counted, FACET_VALUES);
    if out.bounded {
        let share = passed.max(1) as f64 / space.max(1) as f64;
        out.estimate = Some(((out.total as f64 / share).round() as u64).max(out.total + 1));
    }
    Ok(out)
}

/// One segment's counted facets: its names, and (ordinal, matches) in ordinal order.
struct SegmentCounts {
    names: Arc<Names>,
    ords: Vec<(u64, u64)>,
}

impl SegmentCounts {
    /// The ordinals counted in a segment, sorted and tallied rather than counted in a table as
    /// long as the segment's dictionary (10,000 entries at 10,000 workspaces, for a thousand
    /// matches).
    fn tally(names: Arc<Names>, ords: &mut [u64]) -> SegmentCounts {
        ords.sort_unstable();
        let mut tally = Vec::with_capacity(ords.len());
        tally.extend(
            ords.chunk_by(|a, b| a == b)
                .map(|run| (run[0], run.len() as u64)),
        );
        SegmentCounts { names, ords: tally }
    }

    /// Each root's `keep` values with the most matches, when no other segment counted any:
    /// the ordinals, in name order, stand for the names until the values kept are named. A
    /// common word's count stops in the first segment it fills; comparing its thousand names
    /// to merge them with nothing was a fifth of the count.
    fn most(&self, keep: usize) -> (HashMap<String, Facet>, bool) {
        let rooted: Vec<(&str, u64, u64)> = self
            .ords
            .iter()
            .filter_map(|&(ord, n)| {
                let (root, _) = self.names.get(ord as usize)?.as_ref()?;
                Some((&**root, ord, n))
            })
            .collect();
        let roots = rooted.chunk_by(|a, b| a.0 == b.0).map(|root| {
            let values = root.iter().map(|&(_, ord, n)| (ord, n)).collect();
            (root[0].0, values)
        });
        kept_by_root(roots, keep, |ord| {
            let (_, value) = self.names.get(ord as usize)?.as_ref()?;
            Some(value.to_string())
        })
    }

    /// (root, value, matches) of each named ordinal, in ordinal order (unnamed ones dropped).
    fn named(&self) -> impl Iterator<Item = (&str, &str, u64)> {
        self.ords.iter().filter_map(|&(ord, n)| {
            let (root, value) = self.names.get(ord as usize)?.as_ref()?;
            Some((&**root, &**value, n))
        })
    }
}

/// Each root's `keep` values with the most matches (ties by name); whether any were left out.
fn most_counted(segments: &[SegmentCounts], keep: usize) -> (HashMap<String, Facet>, bool) {
    if let [alone] = segments {
        return alone.most(keep);
    }
    let mut seen = Vec::with_capacity(segments.iter().map(|s| s.ords.len()).sum());
    seen.extend(segments.iter().flat_map(SegmentCounts::named));
    // A segment's ordinals follow its names' order (tantivy's facet dictionary is sorted),
    // so `seen` is a run per segment: a stable sort merges the runs in a few comparisons
    // each, where sorting it whole compared strings a dozen times an entry. Equal names
    // (one per segment that counted them) end up adjacent, to be summed.
    seen.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let roots = seen.chunk_by(|a, b| a.0 == b.0).map(|root| {
        let values = root
            .chunk_by(|a, b| a.1 == b.1)
            .map(|same| (same[0].1, same.iter().map(|s| s.2).sum()))
            .collect();
        (root[0].0, values)
    });
    kept_by_root(roots, keep, |value| Some(value.to_string()))
}

/// Each root's values (in name order) cut to the `keep` with the most matches, then named;
/// whether any were left out.
fn kept_by_root<'a, K: Ord>(
    roots: impl Iterator<Item = (&'a str, Vec<(K, u64)>)>,
    keep: usize,
    name: impl Fn(K) -> Option<String>,
) -> (HashMap<String, Facet>, bool) {
    let mut cut = false;
    let mut facets = HashMap::new();
    for (root, values) in roots {
        let (values, left_out) = most(values, keep);
        cut |= left_out;
        let facet = values
            .into_iter()
            .filter_map(|(key, n)| Some((name(key)?, n)))
            .collect();
        facets.insert(root.to_string(), facet);
    }
    (facets, cut)
}

/// A facet cut to the `FACET_VALUES` values with the most matches (a cluster's merged answer);
/// whether any were left out.
pub fn cut(facet: &mut Facet) -> bool {
    let (kept, left_out) = most(std::mem::take(facet).into_iter().collect(), FACET_VALUES);
    *facet = kept.into_iter().collect();
    left_out
}

/// The `keep` values with the most matches, ties by name; whether any were left out.
/// `values` come in name order, so a tie goes to the one seen first: integers compared,
/// not names (a thousand values of one match each, from a common word's matches).
fn most<K: Ord>(values: Vec<(K, u64)>, keep: usize) -> (Vec<(K, u64)>, bool) {
    debug_assert!(values.is_sorted_by(|a, b| a.0 < b.0));
    if values.len() <= keep {
        return (values, false);
    }
    let mut order: Vec<(Reverse<u64>, usize)> = values
        .iter()
        .enumerate()
        .map(|(at, (_, n))| (Reverse(*n), at))
        .collect();
    if keep > 0 {
        order.select_nth_unstable(keep - 1);
    }
    let mut kept = vec![false; values.len()];
    for (_, at) in &order[..keep] {
        kept[*at] = true;
    }
    let kept = values
        .into_iter()
        .zip(kept)
        .filter_map(|(value, kept)| kept.then_some(value))
        .collect();
    (kept, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_facet_keeps_its_values_with_the_most_matches_ties_by_name() {
        let mut facet: Facet = (0..60u64)
            .map(|i| (format!("w{i:02}"), 1 + i / 10))
            .collect();
        assert!(cut(&mut facet));
        assert_eq!(facet.len(), FACET_VALUES);
        assert_eq!(facet.keys().next().map(String::as_str), Some("w10"));
        assert_eq!(facet["w59"], 6);
        // Ties go by name: of 55 values with one match each, v00..v49 stay.
        let mut tied: Facet = (0..55u64).map(|i| (format!("v{i:02}"), 1)).collect();
        assert!(cut(&mut tied));
        assert_eq!(tied.keys().last().map(String::as_str), Some("v49"));
        let mut few: Facet = [("a".to_string(), 3)].into();
        assert!(!cut(&mut few));
        assert_eq!(few.len(), 1);
    }

    #[test]
    fn a_segment_counted_alone_keeps_what_the_merge_of_segments_keeps() {
        let name = |root: &str, value: String| Some((Arc::from(root), Arc::from(value)));
        let mut names: Names = vec![
            name("kind", "artifact".into()),
            name("kind", "handoff".into()),
        ];
        names.extend((0..80).map(|i| name("workspace", format!("w{i:02}"))));
        names.push(None);
        let names = Arc::new(names);
        // Ties at the cut: w00..w79 hold one to three matches each.
        let mut ords: Vec<u64> = (2..82)
            .flat_map(|o| vec![o; 1 + (o as usize * 7) % 3])
            .collect();
        ords.extend([0, 1, 1, 82]);
        let alone = [SegmentCounts::tally(names.clone(), &mut ords.clone())];
        let empty = SegmentCounts::tally(Arc::new(Names::new()), &mut []);
        let merged = [SegmentCounts::tally(names, &mut ords), empty];
        let (one, one_cut) = most_counted(&alone, FACET_VALUES);
        assert_eq!((one.clone(), one_cut), most_counted(&merged, FACET_VALUES));
        assert!(one_cut);
        assert_eq!(one["workspace"].len(), FACET_VALUES);
        assert_eq!(
            one["kind"],
            Facet::from([("artifact".into(), 1), ("handoff".into(), 2)])
        );
    }

    #[test]
    fn segments_naming_one_value_each_add_to_its_count() {
        // Two segments, each with its own names (their own `Arc`s) and ordinals.
        let name = |root: &str, value: &str| Some((Arc::from(root), Arc::from(value)));
        let first: Names = vec![name("kind", "file"), name("workspace", "a"), None];
        let second: Names = vec![
            name("kind", "file"),
            name("workspace", "b"),
            name("workspace", "a"),
        ];
        let segments = [
            SegmentCounts::tally(Arc::new(first), &mut [1, 0, 1, 0, 2]),
            SegmentCounts::tally(Arc::new(second), &mut [2, 0, 1, 0]),
        ];
        let (facets, cut) = most_counted(&segments, FACET_VALUES);
        assert!(!cut);
        assert_eq!(facets["kind"], Facet::from([("file".to_string(), 4)]));
        let ws = Facet::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(facets["workspace"], ws);
        assert_eq!(facets.len(), 2);
    }
}
