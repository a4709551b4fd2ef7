//! Counting the matches of a query and their facets, up to a bound: a page of hits never pays
//! for a pass over every match. Past the bound, the count is a lower bound and the total is
//! estimated from how far into the index the bound was reached (documents are spread over
//! the doc-id space roughly alike, so the share of it counted is the share of matches seen).

use super::facet_names::{FacetNames, Names};
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
    let mut seen = Seen::new();
    // Doc ids passed in segments counted whole, for the estimate.
    let mut passed = 0u64;
    for segment in searcher.segment_readers() {
        if Instant::now() >= deadline {
            out.cut = true;
            break;
        }
        let facets = segment.facet_reader("facets")?;
        let mut ords = Vec::new();
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
                ords.extend(facets.facet_ords(doc));
                out.total += 1;
            }
            doc = scorer.advance();
        }
        let named = names.of(segment)?;
        name_facets(&named, ords, &mut seen);
        if out.bounded {
            break;
        }
        passed += u64::from(segment.max_doc());
    }
    (out.facets, out.facets_cut) = most_counted(seen, FACET_VALUES);
    if out.bounded {
        let share = passed.max(1) as f64 / space.max(1) as f64;
        out.estimate = Some(((out.total as f64 / share).round() as u64).max(out.total + 1));
    }
    Ok(out)
}

/// (root, value, count) of the facets counted: an entry per segment and named ordinal, merged
/// by `most_counted`. Sorting the few counted was cheaper than hashing their names.
type Seen = Vec<(Arc<str>, Arc<str>, u64)>;

/// Appends one segment's counted ordinals to `out`, an entry per named ordinal (unnamed ones
/// are dropped). The ordinals are sorted rather than tallied in a table as long as the
/// segment's dictionary (10,000 entries at 10,000 workspaces, for a thousand matches).
fn name_facets(names: &Names, mut ords: Vec<u64>, out: &mut Seen) {
    ords.sort_unstable();
    for run in ords.chunk_by(|a, b| a == b) {
        if let Some(Some((root, value))) = names.get(run[0] as usize) {
            out.push((root.clone(), value.clone(), run.len() as u64));
        }
    }
}

/// Each root's `keep` values with the most matches (ties by name); whether any were left out.
fn most_counted(mut seen: Seen, keep: usize) -> (HashMap<String, Facet>, bool) {
    // Each segment adds its own entry for a name: sorted, equal names are adjacent to sum.
    seen.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut cut = false;
    let mut facets = HashMap::new();
    for root in seen.chunk_by(|a, b| a.0 == b.0) {
        let values = root
            .chunk_by(|a, b| a.1 == b.1)
            .map(|same| (&*same[0].1, same.iter().map(|s| s.2).sum()))
            .collect();
        let (values, left_out) = most(values, keep);
        cut |= left_out;
        let facet = values
            .into_iter()
            .map(|(v, n)| (v.to_string(), n))
            .collect();
        facets.insert(root[0].0.to_string(), facet);
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
fn most<K: Ord>(mut values: Vec<(K, u64)>, keep: usize) -> (Vec<(K, u64)>, bool) {
    if values.len() <= keep {
        return (values, false);
    }
    let order = |a: &(K, u64), b: &(K, u64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
    if keep > 0 {
        values.select_nth_unstable_by(keep - 1, order);
    }
    values.truncate(keep);
    (values, true)
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
    fn segments_naming_one_value_each_add_to_its_count() {
        // Two segments, each with its own names (their own `Arc`s) and ordinals.
        let name = |root: &str, value: &str| Some((Arc::from(root), Arc::from(value)));
        let first: Names = vec![name("kind", "file"), name("workspace", "a"), None];
        let second: Names = vec![
            name("kind", "file"),
            name("workspace", "b"),
            name("workspace", "a"),
        ];
        let mut seen = Seen::new();
        name_facets(&first, vec![1, 0, 1, 0, 2], &mut seen);
        name_facets(&second, vec![2, 0, 1, 0], &mut seen);
        let (facets, cut) = most_counted(seen, FACET_VALUES);
        assert!(!cut);
        assert_eq!(facets["kind"], Facet::from([("file".to_string(), 4)]));
        let ws = Facet::from([("a".to_string(), 3), ("b".to_string(), 1)]);
        assert_eq!(facets["workspace"], ws);
        assert_eq!(facets.len(), 2);
    }
}
