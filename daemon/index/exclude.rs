//! A query with exclusions that keeps tantivy's skipping of blocks (block-max WAND) for the
//! page of hits. tantivy ranks a `BooleanQuery` of `Must` words and `MustNot` words by scoring
//! every match (its pruning applies to a plain union only): at a million documents,
//! `validation -authentication` scored all 50,000 documents holding `validation` to show 20.
//! Here the words wanted are ranked as they would be alone, pruning included, and each
//! candidate is checked against the excluded documents (a seek forward in their postings:
//! candidates come in document order).

use tantivy::query::{EnableScoring, Exclude, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SegmentReader, TantivyError, TERMINATED};

/// Documents of `wanted` (scored as by it alone) that match nothing of `excluded`.
#[derive(Debug)]
pub(super) struct Excluding {
    pub wanted: Box<dyn Query>,
    pub excluded: Box<dyn Query>,
}

impl Clone for Excluding {
    fn clone(&self) -> Excluding {
        Excluding {
            wanted: self.wanted.box_clone(),
            excluded: self.excluded.box_clone(),
        }
    }
}

impl Query for Excluding {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(ExcludingWeight {
            wanted: self.wanted.weight(scoring)?,
            // The excluded words never score.
            excluded: self
                .excluded
                .weight(EnableScoring::disabled_from_schema(scoring.schema()))?,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a tantivy::Term, bool)) {
        // Only the wanted words are highlighted (as for a BooleanQuery's MustNot clauses).
        self.wanted.query_terms(visitor);
    }
}

struct ExcludingWeight {
    wanted: Box<dyn Weight>,
    excluded: Box<dyn Weight>,
}

impl Weight for ExcludingWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let wanted = self.wanted.scorer(reader, boost)?;
        let excluded = self.excluded.scorer(reader, 1.0)?;
        Ok(Box::new(Exclude::new(wanted, excluded)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut excluded = self.excluded.scorer(reader, 1.0)?;
        if excluded.seek(doc) == doc {
            return Err(TantivyError::InvalidArgument(format!(
                "document {doc} is excluded"
            )));
        }
        self.wanted.explain(reader, doc)
    }

    fn for_each_pruning(
        &self,
        threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        let mut excluded = self.excluded.scorer(reader, 1.0)?;
        // What the caller last asked for: an excluded candidate leaves it as it was.
        let mut current = threshold;
        self.wanted
            .for_each_pruning(threshold, reader, &mut |doc, score| {
                let mut at = excluded.doc();
                if at < doc {
                    at = excluded.seek(doc);
                }
                if at == doc && at != TERMINATED {
                    return current;
                }
                current = callback(doc, score);
                current
            })
    }
}
