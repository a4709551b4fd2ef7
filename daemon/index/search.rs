//! Running a query: a `Searcher` per request from the one reader (never waiting on the
//! writer), the page of hits ranked by BM25 first, with snippets (tantivy's snippet HTML,
//! which escapes the text), then the counts of matches per workspace and kind up to a bound
//! (`count`), and limits on time and terms.

use super::count::{self, COUNT_LIMIT};
use super::exclude::Excluding;
use super::query::{self, Parsed};
use super::schema::Fields;
use super::search_limit::Deadline;
use super::snippets::{escape, Snippets, SNIPPET_CHARS};
use super::{Kind, SearchIndex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::time::{Duration, Instant};
use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, Occur, PhrasePrefixQuery, Query, QueryParser, RangeQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::{DateTime, DocAddress, Order, Searcher, TantivyDocument, Term};

/// Most terms a query may hold (words, prefixes, filter values); more is refused, not cut.
pub const MAX_TERMS: usize = 64;
pub const MAX_LIMIT: usize = 100;
pub const MAX_OFFSET: usize = 10_000;

/// One search.
#[derive(Debug, Clone)]
pub struct Request {
    pub q: String,
    /// Filters given outside the text (the API's `workspace=` and `kind=`).
    pub workspace: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub offset: usize,
    /// The workspaces the caller may see; `None`: all.
    pub scope: Option<Vec<String>>,
    /// Segments not searched by then are left out, and the answer says `partial`.
    pub time_limit: Duration,
    /// When the query was asked, if it then waited for its turn (`blocking::compute`): the
    /// wait is measured.
    pub asked: Option<Instant>,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            q: String::new(),
            workspace: None,
            kind: None,
            limit: 20,
            offset: 0,
            scope: None,
            time_limit: Duration::from_millis(500),
            asked: None,
        }
    }
}

/// Deserialized too: a cluster's node merges the hits of the others (see baton-web's peers).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hit {
    pub workspace: String,
    pub path: String,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// HTML: the text escaped, matches in `<b>`.
    pub snippet: String,
    pub score: f32,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// RFC 3339.
    pub modified: String,
}

pub use super::count::Facet;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Facets {
    pub workspace: Facet,
    pub kind: Facet,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Hits {
    /// Matches, counted up to `COUNT_LIMIT`; past it, a lower bound (`total_is_lower_bound`).
    pub total: usize,
    /// More than `total` match: counting stopped at the bound, and the facets too count only
    /// the matches counted.
    pub total_is_lower_bound: bool,
    /// When the total is a lower bound: the number of matches estimated from the share of
    /// the index counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_estimate: Option<u64>,
    pub hits: Vec<Hit>,
    pub facets: Facets,
    /// A facet lists only the values with the most matches counted (`FACET_VALUES`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub facets_truncated: bool,
    /// Some segments were left out to keep within the time limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// Parts of the query that were ignored, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the query has {0} terms; at most {MAX_TERMS} are searched at once")]
    TooManyTerms(usize),
    #[error("{0}")]
    Page(String),
    #[error("search failed: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
}

impl Request {
    /// Whether the page asked for is one the API serves: `limit` 1 to `MAX_LIMIT`, `offset`
    /// at most `MAX_OFFSET` (the schema's bounds). Refused, not clamped, so that a client
    /// learns it will not be shown hits past the bound.
    pub fn check(&self) -> Result<(), SearchError> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(SearchError::Page(format!(
                "limit {} is out of range; give 1 to {MAX_LIMIT} hits a page",
                self.limit
            )));
        }
        if self.offset > MAX_OFFSET {
            return Err(SearchError::Page(format!(
                "offset {} is past the last hit a search pages to ({MAX_OFFSET}); narrow the query instead",
                self.offset
            )));
        }
        Ok(())
    }
}

impl SearchIndex {
    pub fn search(&self, req: &Request) -> Result<Hits, SearchError> {
        let started = Instant::now();
        let mut parsed = query::parse(&req.q);
        if let Some(ws) = &req.workspace {
            parsed.filters.add("workspace", ws);
        }
        if let Some(kind) = &req.kind {
            parsed.filters.add("kind", kind);
        }
        let searcher = self.reader.searcher();
        let Some((query, terms)) = self.build(&parsed, req.scope.as_deref(), &searcher)? else {
            return Ok(Hits {
                notes: parsed.notes,
                ..Hits::default()
            });
        };
        let limit = req.limit.clamp(1, MAX_LIMIT);
        let offset = req.offset.min(MAX_OFFSET);
        let deadline = started + req.time_limit;
        // The page first, alone, so tantivy can skip blocks of matches that cannot reach it
        // (block-max WAND); then the counts, up to a bound.
        let page = TopDocs::with_limit(limit).and_offset(offset);
        // Filters alone (no words): a listing, newest first, as "every rejected handoff of
        // builder-3" is read; every hit then scores alike.
        let listing = parsed.text.trim().is_empty() && parsed.prefixes.is_empty();
        let (top, partial) = if listing {
            let newest = page.order_by_fast_field::<DateTime>("modified", Order::Desc);
            let (top, partial) = searcher.search(&query, &Deadline::new(newest, deadline))?;
            let top: Vec<(f32, DocAddress)> = top.into_iter().map(|(_, a)| (1.0, a)).collect();
            (top, partial)
        } else {
            searcher.search(&query, &Deadline::new(page.order_by_score(), deadline))?
        };
        let counted = count::count(
            &searcher,
            query.as_ref(),
            COUNT_LIMIT,
            deadline,
            &self.facet_names,
        )?;
        let snippets = Snippets::new(&searcher, &self.fields, terms, &parsed.prefixes)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            hits.push(to_hit(&self.fields, &doc, score, &snippets));
        }
        let mut facets = counted.facets;
        Ok(Hits {
            total: counted.total as usize,
            total_is_lower_bound: counted.bounded,
            total_estimate: counted.estimate,
            hits,
            facets: Facets {
                workspace: facets.remove("workspace").unwrap_or_default(),
                kind: facets.remove("kind").unwrap_or_default(),
            },
            facets_truncated: counted.facets_cut,
            partial: partial || counted.cut,
            notes: parsed.notes,
        })
    }

    /// The tantivy query and the words to highlight; `None`: nothing to search for.
    fn build(
        &self,
        parsed: &Parsed,
        scope: Option<&[String]>,
        searcher: &Searcher,
    ) -> Result<Option<Built>, SearchError> {
        let f = &self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut terms = BTreeSet::new();
        let mut count = 0;
        if !parsed.text.trim().is_empty() {
            let text_query = self.text_query(&parsed.text);
            text_query.query_terms(&mut |term, _| {
                count += 1;
                if term.field() == f.body {
                    if let Some(s) = term.value().as_str() {
                        terms.insert(s.to_string());
                    }
                }
            });
            clauses.push((Occur::Must, text_query));
        }
        for prefix in &parsed.prefixes {
            count += 1;
            let either: Vec<(Occur, Box<dyn Query>)> = [f.title, f.body, f.other]
                .into_iter()
                .map(|field| {
                    let q = PhrasePrefixQuery::new(vec![Term::from_field_text(field, prefix)]);
                    (Occur::Should, Box::new(q) as Box<dyn Query>)
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(either))));
        }
        let searching = !clauses.is_empty() || !parsed.filters.is_empty();
        count += parsed.filters.must.len() + parsed.filters.must_not.len();
        if count > MAX_TERMS {
            return Err(SearchError::TooManyTerms(count));
        }
        if !searching {
            return Ok(None);
        }
        self.add_filters(parsed, &mut clauses, searcher);
        if let Some(visible) = scope {
            clauses.push((Occur::Must, any_of(f.workspace, visible)));
        }
        let mut clauses = lift(clauses);
        if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
            clauses.push((Occur::Must, Box::new(AllQuery)));
        }
        // The text alone is searched as itself: wrapped, a union of words would lose tantivy's
        // skipping of blocks that cannot reach the page.
        if let [(Occur::Must, _)] = clauses.as_slice() {
            let (_, alone) = clauses.pop().expect("one clause");
            return Ok(Some((alone, terms)));
        }
        // One part wanted and words excluded (`validation -authentication`): ranked with the
        // skipping kept (see `exclude`).
        let wanted = clauses.iter().filter(|(o, _)| *o == Occur::Must).count();
        if wanted == 1 && clauses.iter().all(|(o, _)| *o != Occur::Should) {
            let (mut wanted, mut excluded) = (None, Vec::new());
            for (occur, q) in clauses {
                match occur {
                    Occur::Must => wanted = Some(q),
                    _ => excluded.push((Occur::Should, q)),
                }
            }
            let excluding = Excluding {
                wanted: wanted.expect("one clause is wanted"),
                excluded: Box::new(BooleanQuery::new(excluded)),
            };
            return Ok(Some((Box::new(excluding), terms)));
        }
        Ok(Some((Box::new(BooleanQuery::new(clauses)), terms)))
    }

    /// A word in a record's names or times ranks below one in what a person wrote.
    fn boost_of(&self, field: Field) -> tantivy::Score {
        match field {
            field if field == self.fields.title => 2.0,
            field if field == self.fields.other => 0.5,
            _ => 1.0,
        }
    }

    /// The words of a query (tantivy's syntax) over the text fields, each word's union of
    /// fields made an `AnyField`.
    pub(super) fn text_query(&self, text: &str) -> Box<dyn Query> {
        let parsed = self.parsed_text_query(text);
        super::any_field::rewrite(parsed, &|field| self.boost_of(field), &self.ceilings)
    }

    /// The words as tantivy's parser makes them (what `text_query` rewrites).
    pub(super) fn parsed_text_query(&self, text: &str) -> Box<dyn Query> {
        let f = &self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.body, f.other]);
        // A search box reads several words as all of them, as people expect.
        parser.set_conjunction_by_default();
        for field in [f.title, f.other] {
            parser.set_field_boost(field, self.boost_of(field));
        }
        parser.parse_query_lenient(text).0
    }

    fn add_filters(
        &self,
        parsed: &Parsed,
        clauses: &mut Vec<(Occur, Box<dyn Query>)>,
        searcher: &Searcher,
    ) {
        let schema = self.index.schema();
        let filters = &parsed.filters;
        let names: BTreeSet<&str> = filters.must.iter().map(|(n, _)| *n).collect();
        for name in names {
            let field = schema.get_field(name).expect("filters name schema fields");
            let values: Vec<String> = filters
                .must
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .collect();
            clauses.push((Occur::Must, any_of(field, &values)));
        }
        for (name, value) in &filters.must_not {
            let field = schema.get_field(name).expect("filters name schema fields");
            clauses.push((Occur::MustNot, any_of(field, std::slice::from_ref(value))));
        }
        let dated = filters.after.is_some() || filters.before.is_some();
        // A range holding every document's date (`after:2000-01-01`) filters nothing, yet
        // would read the date of every document: it is left out.
        if dated && !holds_every_date(searcher, filters.after, filters.before) {
            let term = |t: i64| {
                Term::from_field_date_for_search(
                    self.fields.modified,
                    DateTime::from_timestamp_secs(t),
                )
            };
            let lower = filters
                .after
                .map_or(Bound::Unbounded, |t| Bound::Included(term(t)));
            let upper = filters
                .before
                .map_or(Bound::Unbounded, |t| Bound::Excluded(term(t)));
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lower, upper))));
        }
    }
}

/// Whether every document's date is within [after, before).
fn holds_every_date(searcher: &Searcher, after: Option<i64>, before: Option<i64>) -> bool {
    searcher.segment_readers().iter().all(|segment| {
        let Ok(column) = segment.fast_fields().date("modified") else {
            return false;
        };
        let (min, max) = (
            column.min_value().into_timestamp_secs(),
            column.max_value().into_timestamp_secs(),
        );
        // Every document has a date (the writer always sets one), so min and max bound them.
        after.is_none_or(|a| a <= min) && before.is_none_or(|b| max < b)
    })
}

/// The clauses with those of a `Must` BooleanQuery that holds no `Should` clause taken into
/// them (the text `validation -authentication` is one, of a `Must` and a `MustNot`): the
/// same documents, and the same scores, since a `MustNot` clause never scores.
fn lift(clauses: Vec<(Occur, Box<dyn Query>)>) -> Vec<(Occur, Box<dyn Query>)> {
    let mut out = Vec::with_capacity(clauses.len());
    for (occur, q) in clauses {
        let inner = q
            .downcast_ref::<BooleanQuery>()
            .filter(|b| occur == Occur::Must && !b.clauses().is_empty())
            .filter(|b| b.clauses().iter().all(|(o, _)| *o != Occur::Should))
            .filter(|b| b.clauses().iter().any(|(o, _)| *o == Occur::Must));
        match inner {
            Some(b) => out.extend(b.clauses().iter().map(|(o, q)| (*o, q.box_clone()))),
            None => out.push((occur, q)),
        }
    }
    out
}

/// A query and the body words it highlights.
type Built = (Box<dyn Query>, BTreeSet<String>);

/// A document with any of these exact values in `field` (none: matches nothing).
fn any_of(field: Field, values: &[String]) -> Box<dyn Query> {
    if values.is_empty() {
        return Box::new(EmptyQuery);
    }
    let options: Vec<(Occur, Box<dyn Query>)> = values
        .iter()
        .map(|v| {
            let q = TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic);
            (Occur::Should, Box::new(q) as Box<dyn Query>)
        })
        .collect();
    Box::new(BooleanQuery::new(options))
}

fn to_hit(f: &Fields, doc: &TantivyDocument, score: f32, snippets: &Snippets) -> Hit {
    let text = |field: Field| {
        doc.get_first(field)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let body = text(f.body).unwrap_or_default();
    let title = text(f.title).unwrap_or_default();
    let kind = text(f.kind)
        .as_deref()
        .and_then(Kind::parse)
        .unwrap_or(Kind::Artifact);
    let mut snippet = snippets.body.snippet(&body);
    if snippet.is_empty() && kind == Kind::Artifact {
        // The match is in the file's name: show that. A record's title ("rejected by
        // alice") is shown above the snippet already, which then shows its text.
        snippet = snippets.title.snippet(&title);
    }
    let html = if snippet.is_empty() {
        escape(
            body.chars()
                .take(SNIPPET_CHARS)
                .collect::<String>()
                .trim_end(),
        )
    } else {
        snippet.to_html()
    };
    let modified = doc
        .get_first(f.modified)
        .and_then(|v| v.as_datetime())
        .map(|d| d.into_timestamp_secs())
        .unwrap_or(0);
    Hit {
        workspace: text(f.workspace).unwrap_or_default(),
        path: text(f.path).unwrap_or_default(),
        kind,
        key: text(f.key),
        snippet: html,
        score,
        title,
        task_id: text(f.task_id),
        agent: text(f.agent),
        outcome: text(f.outcome),
        trigger: text(f.trigger),
        revision: doc.get_first(f.revision).and_then(|v| v.as_u64()),
        modified: rfc3339(modified),
    }
}

fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
