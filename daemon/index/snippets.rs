//! Snippets: tantivy's snippet generator over a hit's stored text, highlighting the query's
//! words and the indexed words its prefixes match; text shown without highlights is escaped
//! here (tantivy's snippet HTML escapes its own).

use super::schema::Fields;
use std::collections::BTreeSet;
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::Searcher;

/// Most words a prefix adds to the snippet's highlights.
const MAX_EXPANSIONS: usize = 50;
pub(super) const SNIPPET_CHARS: usize = 240;

/// Snippets of the body, highlighting the query's words and the words its prefixes match.
pub(super) struct Snippets {
    pub body: SnippetGenerator,
    pub title: SnippetGenerator,
}

impl Snippets {
    pub fn new(
        searcher: &Searcher,
        f: &Fields,
        mut words: BTreeSet<String>,
        prefixes: &[String],
    ) -> tantivy::Result<Snippets> {
        for prefix in prefixes {
            words.extend(expansions(searcher, f.body, prefix)?);
        }
        let make = |field: Field| -> tantivy::Result<SnippetGenerator> {
            let scored = words.iter().map(|w| (w.clone(), 1.0)).collect();
            let tokenizer = searcher.index().tokenizer_for_field(field)?;
            Ok(SnippetGenerator::new(
                scored,
                tokenizer,
                field,
                SNIPPET_CHARS,
            ))
        };
        Ok(Snippets {
            body: make(f.body)?,
            title: make(f.title)?,
        })
    }
}

/// Indexed words starting with `prefix`, at most `MAX_EXPANSIONS`.
fn expansions(searcher: &Searcher, field: Field, prefix: &str) -> tantivy::Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field)?;
        let mut stream = inverted
            .terms()
            .range()
            .ge(prefix.as_bytes())
            .into_stream()?;
        while out.len() < MAX_EXPANSIONS && stream.advance() {
            let Ok(word) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            if !word.starts_with(prefix) {
                break;
            }
            out.insert(word.to_string());
        }
    }
    Ok(out.into_iter().collect())
}

/// The HTML escape of text shown without highlights (tantivy's snippets escape their own).
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
