//! A word searched in several fields (title, body, other), ranked with tantivy's skipping of
//! blocks (block-max WAND) in every segment. tantivy prunes a union of words only when every
//! one of its term scorers reads frequencies, and a word missing from one field of a segment
//! gets an empty scorer that reads none: the whole union then scores every document holding
//! the word. A boosted field alone is not pruned either (its weight scores every match). At
//! 110,000 handoffs whose word `round` is in titles only, a page of 20 cost 4 ms of CPU.
//! Here each segment ranks the union of the fields that hold the word there, and a word held
//! by one field alone is ranked by that term's own weight, its field's boost applied to the
//! scores it reports. Where the word is one clause among others, it is the parser's union.
//! The pages are tantivy's own query's, up to the approximation of block-max WAND, which
//! tantivy's own union makes wherever every field holds the word (a block's best score is
//! reckoned with the segment's own average length).
//!
//! A union of two fields is read in a segment only until the page's lowest score reaches its
//! ceiling there (`ceiling`): the sum of each field's best score, exact to the bit, which no
//! document left could beat.

use super::ceiling::{self, Ceilings};
use std::sync::Arc;
use tantivy::query::{
    Bm25Weight, BooleanQuery, BooleanWeight, BoostQuery, BoostWeight, EnableScoring, Explanation,
    Occur, Query, ScoreCombiner, Scorer, SumCombiner, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, Score, SegmentReader, Term};

/// Any of `parts`: a word in one field each, with the boost the parser gave that field.
#[derive(Clone)]
pub(super) struct AnyField {
    parts: Vec<(Term, Score)>,
    ceilings: Arc<Ceilings>,
}

impl std::fmt::Debug for AnyField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnyField")
            .field("parts", &self.parts)
            .finish()
    }
}

/// The parser's query with each union of one term per field made an `AnyField`; anything
/// else is kept as it is. `boost_of` is what the parser was told of each field; `ceilings`
/// the index's words' best scores by segment.
pub(super) fn rewrite(
    query: Box<dyn Query>,
    boost_of: &dyn Fn(Field) -> Score,
    ceilings: &Arc<Ceilings>,
) -> Box<dyn Query> {
    let Some(boolean) = query.downcast_ref::<BooleanQuery>() else {
        return query;
    };
    // A union that asks for more than one of its clauses is not a word's.
    let any_one = boolean.get_minimum_number_should_match() <= 1;
    if let Some(any) = any_one
        .then(|| AnyField::of(boolean.clauses(), boost_of, ceilings))
        .flatten()
    {
        return Box::new(any);
    }
    let clauses = boolean
        .clauses()
        .iter()
        .map(|(occur, q)| (*occur, rewrite(q.box_clone(), boost_of, ceilings)))
        .collect();
    let minimum = boolean.get_minimum_number_should_match();
    Box::new(BooleanQuery::with_minimum_required_clauses(
        clauses, minimum,
    ))
}

impl AnyField {
    fn of(
        clauses: &[(Occur, Box<dyn Query>)],
        boost_of: &dyn Fn(Field) -> Score,
        ceilings: &Arc<Ceilings>,
    ) -> Option<AnyField> {
        if clauses.len() < 2 {
            return None;
        }
        let part = |(occur, q): &(Occur, Box<dyn Query>)| match occur {
            Occur::Should => one_term(q.as_ref(), boost_of),
            _ => None,
        };
        let parts = clauses.iter().map(part).collect::<Option<Vec<_>>>()?;
        Some(AnyField {
            parts,
            ceilings: ceilings.clone(),
        })
    }
}

/// The term and boost of a query that is exactly one term, boosted as its field is. tantivy
/// does not show a query's boost but in its debug text, which is compared whole. That text
/// leaves out a term query's record option: the parser makes every word's `WithFreqs`.
fn one_term(query: &dyn Query, boost_of: &dyn Fn(Field) -> Score) -> Option<(Term, Score)> {
    let mut terms = Vec::new();
    query.query_terms(&mut |term, _| terms.push(term.clone()));
    let [term] = terms.as_slice() else {
        return None;
    };
    let boost = boost_of(term.field());
    let plain = term_query(term);
    let expected = match boost == 1.0 {
        true => format!("{plain:?}"),
        false => format!("{:?}", BoostQuery::new(Box::new(plain), boost)),
    };
    (format!("{query:?}") == expected).then(|| (term.clone(), boost))
}

/// A term query as the parser makes it for a word.
fn term_query(term: &Term) -> TermQuery {
    TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)
}

impl Query for AnyField {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let parts = self
            .parts
            .iter()
            .map(|(term, boost)| {
                let bm25 = match scoring {
                    EnableScoring::Enabled {
                        statistics_provider,
                        ..
                    } => Some(Bm25Weight::for_terms(
                        statistics_provider,
                        std::slice::from_ref(term),
                    )?),
                    EnableScoring::Disabled { .. } => None,
                };
                Ok(Part {
                    term: term.clone(),
                    boost: *boost,
                    plain: Arc::from(term_query(term).weight(scoring)?),
                    bm25,
                })
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(Box::new(AnyFieldWeight {
            parts,
            scoring: scoring.is_scoring_enabled(),
            ceilings: self.ceilings.clone(),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for (term, _) in &self.parts {
            visitor(term, false);
        }
    }
}

struct Part {
    term: Term,
    boost: Score,
    /// The term's own weight, unboosted: the only one tantivy prunes alone.
    plain: Arc<dyn Weight>,
    /// The scores `plain` gives (as tantivy's term query reckons them), when scoring.
    bm25: Option<Bm25Weight>,
}

impl Part {
    /// As the parser's query weighs it: boosted as tantivy's `BoostWeight` does.
    fn boosted(&self) -> Box<dyn Weight> {
        Box::new(BoostWeight::new(
            Box::new(Shared(self.plain.clone())),
            self.boost,
        ))
    }

    /// Whether scaling by the boost is exact, so the scores and the threshold carried
    /// through the plain weight are those of the boosted one to the last bit.
    fn exact_boost(&self) -> bool {
        self.boost > 0.0 && self.boost.is_normal() && self.boost.to_bits() & 0x7F_FFFF == 0
    }
}

struct AnyFieldWeight {
    parts: Vec<Part>,
    scoring: bool,
    ceilings: Arc<Ceilings>,
}

/// One part's weight, shared by the union made for each segment.
struct Shared(Arc<dyn Weight>);

impl Weight for Shared {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.0.scorer(reader, boost)
    }
    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.0.explain(reader, doc)
    }
}

impl AnyFieldWeight {
    /// The parts whose word is in this segment.
    fn held(&self, reader: &SegmentReader) -> tantivy::Result<Vec<&Part>> {
        let mut held = Vec::new();
        for part in &self.parts {
            let index = reader.inverted_index(part.term.field())?;
            if index.get_term_info(&part.term)?.is_some() {
                held.push(part);
            }
        }
        Ok(held)
    }

    /// A bound on what a document of `segment` holding `held` can score: the sum of each
    /// part's best score there, each exact to the bit as tantivy's union scores it (the
    /// part's boost folded into its weight, as a boosted term scorer's is). Reached when one
    /// document holds every part's best (many, when they tie). Two parts at most: a sum of
    /// two is the same in either order, one of three is not.
    fn ceiling(&self, segment: &SegmentReader, held: &[&Part]) -> tantivy::Result<Option<Score>> {
        if held.len() > 2 {
            return Ok(None);
        }
        let mut sum: Score = 0.0;
        for part in held {
            let Some(bm25) = &part.bm25 else {
                return Ok(None);
            };
            let Some(pairs) = self.ceilings.pairs(segment, &part.term)? else {
                return Ok(None);
            };
            sum += ceiling::best(&bm25.boost_by(part.boost), &pairs);
        }
        Ok(Some(sum))
    }

    /// The page's hits of the union of `held` in `segment`, read until the page's lowest score
    /// reaches the segment's ceiling, when it has one: tantivy passes on only documents that
    /// beat the lowest, and none left can. The lowest is then given back as infinite, which
    /// ends tantivy's block-max WAND at once; it would decode every block left to move past
    /// it (a lone term's skips them undecoded, so it needs no ceiling). Each segment's page
    /// starts empty, so the lowest is this segment's own.
    fn rank_union(
        &self,
        held: &[&Part],
        threshold: Score,
        segment: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        let union = self.union(held.iter().copied());
        let Some(ceiling) = self.ceiling(segment, held)? else {
            return union.for_each_pruning(threshold, segment, callback);
        };
        let mut stopping = |doc, score| match callback(doc, score) {
            lowest if lowest >= ceiling => {
                self.ceilings.stopped();
                Score::INFINITY
            }
            lowest => lowest,
        };
        union.for_each_pruning(threshold, segment, &mut stopping)
    }

    /// The union of `parts`; one that does not score (a count) sums no scores, as tantivy's
    /// own union does not.
    fn union<'a>(&self, parts: impl Iterator<Item = &'a Part>) -> Box<dyn Weight> {
        let weights = parts.map(|p| (Occur::Should, p.boosted())).collect();
        match self.scoring {
            true => union_of::<SumCombiner>(weights, true),
            false => union_of::<Unscored>(weights, false),
        }
    }
}

/// A union of `weights` whose scores `C` combines.
fn union_of<C: ScoreCombiner + Sync>(
    weights: Vec<(Occur, Box<dyn Weight>)>,
    scoring: bool,
) -> Box<dyn Weight> {
    // None required: with no other clause, tantivy requires one of them, and a union of one
    // is then still ranked by block-max WAND (a minimum of 1 made it a required clause,
    // scored document by document).
    Box::new(BooleanWeight::with_minimum_number_should_match(
        weights,
        0,
        scoring,
        Box::new(C::default),
    ))
}

/// Sums no scores: tantivy's `DoNothingCombiner`, which it does not export.
#[derive(Default, Clone, Copy)]
struct Unscored;

impl ScoreCombiner for Unscored {
    fn update<S: Scorer>(&mut self, _: &mut S) {}
    fn clear(&mut self) {}
    fn score(&self) -> Score {
        1.0
    }
}

impl Weight for AnyFieldWeight {
    /// The parser's union itself (all fields): where it is one clause among others (an
    /// intersection, an `OR`), tantivy combines and scores it as it would the parser's.
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.union(self.parts.iter()).scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.union(self.parts.iter()).explain(reader, doc)
    }

    /// The page of hits when the word is the whole query: pruned in every segment.
    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        match self.held(reader)?.as_slice() {
            [] => Ok(()),
            // tantivy prunes a lone term through its own weight only, which a boost hides.
            [alone] if self.scoring && alone.exact_boost() => {
                let boost = alone.boost;
                let mut unboosted = |doc, score: Score| callback(doc, score * boost) / boost;
                alone
                    .plain
                    .for_each_pruning(threshold / boost, reader, &mut unboosted)
            }
            held => self.rank_union(held, threshold, reader, callback),
        }
    }
}
