//! The yardstick: tantivy on its own indexing the same files (read from disk, one indexing
//! thread, the same memory budget, a text body stored for snippets), with none of baton's work
//! around it (cataloguing, fingerprints, the bounded channel, other fields).

use anyhow::Result;
use std::path::Path;
use std::time::Instant;
use tantivy::schema::{Schema, STORED, STRING, TEXT};
use tantivy::{doc, Index, IndexWriter};

/// Indexes every file under `root` into a fresh index in `into`; (files, bytes, seconds).
pub fn index(root: &Path, into: &Path, budget: usize) -> Result<(u64, u64, f64)> {
    let mut b = Schema::builder();
    let path = b.add_text_field("path", STRING | STORED);
    let body = b.add_text_field("body", TEXT | STORED);
    std::fs::create_dir_all(into)?;
    let index = Index::create_in_dir(into, b.build())?;
    let started = Instant::now();
    let mut writer: IndexWriter = index.writer_with_num_threads(1, budget)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        if !entry.file_type().is_file() || !entry.path().to_string_lossy().contains("/inbox/") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        bytes += text.len() as u64;
        files += 1;
        writer.add_document(
            doc!(path => entry.path().to_string_lossy().into_owned(), body => text),
        )?;
        if files % 10_000 == 0 {
            writer.commit()?;
        }
    }
    writer.commit()?;
    writer.wait_merging_threads()?;
    Ok((files, bytes, started.elapsed().as_secs_f64()))
}
