//! The records of a workspace when they are not files in data_dir but rows of a cluster's
//! database (see `crate::cluster`): the node that serves the workspace indexes them through
//! the store, like the embedded store's files. What changed is told by the stamps the backend
//! keeps (one query a record folder), so a reconcile reads only the records that changed.

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
    /// `meta.json` as read, handed to its item's load.
    meta_bytes: Option<Arc<Vec<u8>>>,
}

impl RowFolder {
    pub(super) fn read(store: &Store, dir: &str) -> RowFolder {
        let stamps = store
            .stamps(dir)
            .unwrap_or_else(|e| {
                tracing::debug!(dir, error = %e, "cannot list a record folder to index it");
                Vec::new()
            })
            .into_iter()
            .map(|(name, size, stamp)| (name, (size, stamp)))
            .collect();
        let mut folder = RowFolder {
            store: store.clone(),
            dir: dir.to_string(),
            stamps,
            meta: None,
            meta_bytes: None,
        };
        folder.meta_bytes = folder.read_bytes("meta.json").map(Arc::new);
        folder.meta = (folder.meta_bytes.as_ref()).and_then(|b| serde_json::from_slice(b).ok());
        folder
    }

    fn rel(&self, name: &str) -> PathBuf {
        PathBuf::from("handoffs").join(&self.dir).join(name)
    }

    fn read_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let (size, _) = self.stamps.get(name)?;
        if *size > MAX_RECORD {
            return None;
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
            bytes: match name {
                "meta.json" => self.meta_bytes.clone(),
                _ => None,
            },
        }
    }
}
