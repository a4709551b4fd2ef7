//! The index's fields. Bump `VERSION` whenever a field changes: an index of another version is
//! set aside and rebuilt (it is a cache of the workspaces and the store).

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};

/// Version of the schema below; it names the index's folder in data_dir (`search/v{VERSION}`).
pub const VERSION: u32 = 1;

/// The fields, by handle.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// Unique per document: kind, workspace and path or key (see `Doc::id`).
    pub id: Field,
    /// What the indexer compares to decide whether a source changed (size, mtime, digest).
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
    pub body: Field,
    /// `/workspace/<name>` and `/kind/<kind>`, for the counts beside the hits.
    pub facets: Field,
}

pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let exact = STRING | STORED;
    let text = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING | STORED | FAST),
        fp: b.add_text_field("fp", STRING | FAST),
        workspace: b.add_text_field("workspace", exact.clone()),
        kind: b.add_text_field("kind", exact.clone()),
        path: b.add_text_field("path", exact.clone()),
        key: b.add_text_field("key", exact.clone()),
        task_id: b.add_text_field("task_id", exact.clone()),
        agent: b.add_text_field("agent", exact.clone()),
        outcome: b.add_text_field("outcome", exact.clone()),
        trigger: b.add_text_field("trigger", exact),
        revision: b.add_u64_field("revision", STORED),
        modified: b.add_date_field("modified", INDEXED | STORED | FAST),
        title: b.add_text_field("title", text.clone()),
        body: b.add_text_field("body", text),
        facets: b.add_facet_field("facets", tantivy::schema::FacetOptions::default()),
    };
    (b.build(), fields)
}
