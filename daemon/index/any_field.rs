//! A word searched in several fields (title, body, other), ranked with tantivy's skipping of
//! blocks (block-max WAND) in every segment. tantivy prunes a union of words only when every
//! one of its term scorers reads frequencies, and a word missing from one field of a segment
//! gets an empty scorer that reads none: the whole union then scores every document holding
//! the word. A boosted field alone is not pruned either (its weight scores every match). At
//! 110,000 handoffs whose word `round` is in titles only, a page of 20 cost 4 ms of CPU.
//! Here each segment ranks the union of the fields that hold the word there, and a word held
//! by one field alone is ranked by that term's own weight, its field's boost applied to the
//! scores it reports.

use std::sync::Arc;
use tantivy::query::{
    BooleanQuery, BooleanWeight, BoostQuery, EnableScoring, Explanation, Occur, Query, Scorer,
    SumCombiner, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, Score, SegmentReader, Term};

/// Any of `parts`: a word in one field each, with the boost the parser gave that field.
#[derive(Debug, Clone)]
pub(super) struct AnyField {
    parts: Vec<(Term, Score)>,
}

/// The parser's query with each union of one term per field made an `AnyField`; anything
/// else is kept as it is. `boost_of` is what the parser was told of each field.
pub(super) fn rewrite(query: Box<dyn Query>, boost_of: &dyn Fn(Field) -> Score) -> Box<dyn Query> {
    let Some(boolean) = query.downcast_ref::<BooleanQuery>() else {
        return query;
    };
    if let Some(any) = AnyField::of(boolean.clauses(), boost_of) {
        return Box::new(any);
    }
    let clauses = boolean
        .clauses()
        .iter()
        .map(|(occur, q)| (*occur, rewrite(q.box_clone(), boost_of)))
        .collect();
    Box::new(BooleanQuery::new(clauses))
}

impl AnyField {
    fn of(
        clauses: &[(Occur, Box<dyn Query>)],
        boost_of: &dyn Fn(Field) -> Score,
    ) -> Option<AnyField> {
        if clauses.len() < 2 {
            return None;
        }
        let part = |(occur, q): &(Occur, Box<dyn Query>)| match occur {
            Occur::Should => one_term(q.as_ref(), boost_of),
            _ => None,
        };
        let parts = clauses.iter().map(part).collect::<Option<Vec<_>>>()?;
        Some(AnyField { parts })
    }
}

/// The term and boost of a query that is exactly one term, boosted as its field is. tantivy
/// does not show a query's boost but in its debug text, which is compared whole.
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
                let plain = term_query(term).weight(scoring)?;
                let boosted =
                    BoostQuery::new(Box::new(term_query(term)), *boost).weight(scoring)?;
                Ok(Part {
                    term: term.clone(),
                    boost: *boost,
                    plain,
                    boosted: Arc::from(boosted),
                })
            })
            .collect::<tantivy::Result<_>>()?;
        Ok(Box::new(AnyFieldWeight {
            parts,
            scoring: scoring.is_scoring_enabled(),
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
    /// The term's own weight: it prunes, and scores as the boosted one divided by `boost`.
    plain: Box<dyn Weight>,
    /// As the parser would have weighed it: what the unions are made of.
    boosted: Arc<dyn Weight>,
}

struct AnyFieldWeight {
    parts: Vec<Part>,
    scoring: bool,
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

    fn union(&self, parts: &[&Part]) -> BooleanWeight<SumCombiner> {
        let weights = parts
            .iter()
            .map(|p| {
                (
                    Occur::Should,
                    Box::new(Shared(p.boosted.clone())) as Box<dyn Weight>,
                )
            })
            .collect();
        BooleanWeight::new(weights, self.scoring, Box::new(SumCombiner::default))
    }
}

impl Weight for AnyFieldWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.union(&self.held(reader)?).scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.union(&self.held(reader)?).explain(reader, doc)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        match self.held(reader)?.as_slice() {
            [] => Ok(()),
            // tantivy prunes a lone term through its own weight only, which a boost hides.
            [alone] if self.scoring => {
                let boost = alone.boost;
                let mut unboosted = |doc, score: Score| callback(doc, score * boost) / boost;
                alone
                    .plain
                    .for_each_pruning(threshold / boost, reader, &mut unboosted)
            }
            held => self
                .union(held)
                .for_each_pruning(threshold, reader, callback),
        }
    }
}
