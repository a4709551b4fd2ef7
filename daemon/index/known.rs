//! What the index holds, as (id -> fingerprint), read from the fast fields (columnar, so a
//! start-up over 100,000 documents never decompresses their stored bodies). The indexer
//! compares it with the sources and re-reads only what changed.

use super::schema::Fields;
use std::collections::HashMap;
use tantivy::Searcher;

pub(super) fn read(searcher: &Searcher, fields: &Fields) -> HashMap<String, String> {
    let schema = searcher.schema();
    let (id_name, fp_name) = (
        schema.get_field_name(fields.id),
        schema.get_field_name(fields.fp),
    );
    let mut out = HashMap::new();
    for segment in searcher.segment_readers() {
        let fast = segment.fast_fields();
        let (Ok(Some(ids)), Ok(Some(fps))) = (fast.str(id_name), fast.str(fp_name)) else {
            continue;
        };
        let (mut id, mut fp) = (String::new(), String::new());
        for doc in segment.doc_ids_alive() {
            id.clear();
            fp.clear();
            let Some(id_ord) = ids.term_ords(doc).next() else {
                continue;
            };
            if !ids.ord_to_str(id_ord, &mut id).unwrap_or(false) {
                continue;
            }
            if let Some(fp_ord) = fps.term_ords(doc).next() {
                let _ = fps.ord_to_str(fp_ord, &mut fp);
            }
            out.insert(id.clone(), fp.clone());
        }
    }
    out
}
