//! What the index holds, as (id -> fingerprint's hash), read from the fast fields (columnar, so a
//! start-up over 100,000 documents never decompresses their stored bodies). The indexer
//! compares it with the sources and re-reads only what changed.

use super::schema::Fields;
use std::collections::HashMap;
use tantivy::Searcher;

pub(super) fn read(searcher: &Searcher, fields: &Fields) -> HashMap<String, u64> {
    let schema = searcher.schema();
    let (id_name, fp_name) = (
        schema.get_field_name(fields.id),
        schema.get_field_name(fields.fp),
    );
    let mut out = HashMap::new();
    for segment in searcher.segment_readers() {
        let fast = segment.fast_fields();
        let (Ok(Some(ids)), Ok(fps)) = (fast.str(id_name), fast.u64(fp_name)) else {
            continue;
        };
        let mut id = String::new();
        for doc in segment.doc_ids_alive() {
            id.clear();
            let Some(id_ord) = ids.term_ords(doc).next() else {
                continue;
            };
            if !ids.ord_to_str(id_ord, &mut id).unwrap_or(false) {
                continue;
            }
            out.insert(id.clone(), fps.first(doc).unwrap_or(0));
        }
    }
    out
}
