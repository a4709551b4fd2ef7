//! The records of a workspace when they are not files in data_dir but rows of a cluster's
//! database (see `crate::cluster`): the node that serves the workspace indexes them through
//! the store, like the embedded store's files. What changed is told by the stamps the backend
//! keeps, so a reconcile reads only the records that changed. A folder is read in one query:
//! the stamps of its files and the bytes of the two it always reads (`meta.json`) or reads at
//! each decision (`decision.json`); another file is read when its item is loaded.

use super::{RecordFolder, Source, MAX_RECORD};
use crate::store::Store;
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One record folder read through the store.
pub(super) struct RowFolder {
    store: Store,
    dir: String,
    /// File name -> (size, stamp).
    stamps: HashMap<String, (u64, String)>,
    meta: Option<Value>,
    /// The files read with the stamps (`WITH_BYTES`), handed to their items' loads.
    bytes: HashMap<String, Arc<Vec<u8>>>,
}

/// The files whose bytes come with the folder's stamps.
const WITH_BYTES: [&str; 2] = ["meta.json", "decision.json"];

impl RowFolder {
    pub(super) fn read(store: &Store, dir: &str) -> RowFolder {
        let files = store
            .folder(dir, &WITH_BYTES, MAX_RECORD)
            .unwrap_or_else(|e| {
                tracing::debug!(dir, error = %e, "cannot list a record folder to index it");
                Vec::new()
            });
        let mut stamps = HashMap::new();
        let mut bytes = HashMap::new();
        for file in files {
            if let Some(b) = file.bytes {
                bytes.insert(file.name.clone(), Arc::new(b));
            }
            stamps.insert(file.name, (file.size, file.stamp));
        }
        let meta = bytes
            .get("meta.json")
            .and_then(|b| serde_json::from_slice(b).ok());
        RowFolder {
            store: store.clone(),
            dir: dir.to_string(),
            stamps,
            meta,
            bytes,
        }
    }

    fn rel(&self, name: &str) -> PathBuf {
        PathBuf::from("handoffs").join(&self.dir).join(name)
    }

    fn read_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let (size, _) = self.stamps.get(name)?;
        if *size > MAX_RECORD {
            return None;
        }
        if let Some(bytes) = self.bytes.get(name) {
            return Some(bytes.to_vec());
        }
        self.store.read(&self.rel(name)).ok()?
    }

    fn read_json(&self, name: &str) -> Option<Value> {
        serde_json::from_slice(&self.read_bytes(name)?).ok()
    }

    /// When the record was last received, for documents a row gives no time of.
    fn received(&self) -> i64 {
        self.meta
            .as_ref()
            .and_then(|m| m["received_at"].as_str())
            .and_then(crate::index::query::parse_date)
            .unwrap_or(0)
    }
}

impl RecordFolder for RowFolder {
    fn json(&self, name: &str) -> Option<Value> {
        match name {
            "meta.json" => self.meta.clone(),
            _ => self.read_json(name),
        }
    }

    fn stamp(&self, name: &str) -> Option<(u64, String)> {
        self.stamps.get(name).cloned()
    }

    fn source(&self, name: &str) -> Source {
        Source::Stored {
            store: self.store.clone(),
            rel: self.rel(name),
            modified: self.received(),
            bytes: self.bytes.get(name).cloned(),
        }
    }
}
