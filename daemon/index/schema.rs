//! The index's fields. Bump `VERSION` whenever a field changes: an index of another version is
//! set aside and rebuilt (it is a cache of the workspaces and the store).

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};

/// Version of the schema below; it names the index's folder in data_dir (`search/v{VERSION}`).
pub const VERSION: u32 = 2;

/// The fields, by handle.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// Unique per document: kind, workspace and path or key (see `Doc::id`).
    pub id: Field,
    /// What the indexer compares to decide whether a source changed: the hash of a
    /// fingerprint (size, mtime, digest).
    pub fp: Field,
    pub workspace: Field,
    pub kind: Field,
    pub path: Field,
    pub key: Field,
    pub task_id: Field,
    pub agent: Field,
    pub outcome: Field,
    pub trigger: Field,
    pub revision: Field,
    pub modified: Field,
    /// Searched with `body`: a file's path, a handoff's title, ...
    pub title: Field,
    /// The text a person reads (a file's content; a handoff's, checkpoint's or decision's
    /// prose), stored for snippets.
    pub body: Field,
    /// The rest of a record's strings (names, times, digests): searched, never shown, so a
    /// snippet is never a dump of them.
    pub other: Field,
    /// `/workspace/<name>` and `/kind/<kind>`, for the counts beside the hits.
    pub facets: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let exact = STRING | STORED;
    let words = TextFieldIndexing::default()
        .set_tokenizer("default")
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let searched = TextOptions::default().set_indexing_options(words);
    let text = searched.clone().set_stored();
    let fields = Fields {
        // Indexed to delete by; the fast columns are what the indexer reads back at start.
        id: b.add_text_field("id", STRING | FAST),
        fp: b.add_u64_field("fp", FAST),
        workspace: b.add_text_field("workspace", exact.clone()),
        kind: b.add_text_field("kind", exact.clone()),
        path: b.add_text_field("path", exact.clone()),
        key: b.add_text_field("key", exact.clone()),
        task_id: b.add_text_field("task_id", exact.clone()),
        agent: b.add_text_field("agent", exact.clone()),
        outcome: b.add_text_field("outcome", exact.clone()),
        trigger: b.add_text_field("trigger", exact),
        revision: b.add_u64_field("revision", STORED),
        // Ranges are answered from the fast column: no terms per second to index.
        modified: b.add_date_field("modified", STORED | FAST),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
        other: b.add_text_field("other", searched),
        facets: b.add_facet_field("facets", tantivy::schema::FacetOptions::default()),
    };
    (b.build(), fields)
}
