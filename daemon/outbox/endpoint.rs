//! A configured webhook endpoint, and the endpoints a receiver disabled with `410 Gone`
//! (kept in `outbox/disabled.json`, so a restart does not start sending to them again).

use super::sign::Key;
use super::spool::sync_dir;
use crate::config::{Webhook, WebhookFormat};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct Endpoint {
    pub name: String,
    /// `webhook:NAME`, as deliveries and routes' `notify` name it.
    pub channel: String,
    pub url: String,
    pub key: Key,
    pub allow_private: bool,
    pub format: WebhookFormat,
    pub classifications: Vec<crate::contract::handoff::Classification>,
    events: Vec<glob::Pattern>,
}

impl Endpoint {
    /// From a checked configuration (the secret and globs were validated at load).
    pub fn new(w: &Webhook) -> Endpoint {
        Endpoint {
            name: w.name.clone(),
            channel: format!("webhook:{}", w.name),
            url: w.url.clone(),
            key: Key::from_secret(&w.secret).expect("secrets are checked with the config"),
            allow_private: w.allow_private,
            format: w.format,
            classifications: w.classifications.clone(),
            events: w
                .events
                .iter()
                .filter_map(|g| glob::Pattern::new(g).ok())
                .collect(),
        }
    }

    pub fn wants(&self, event: &str) -> bool {
        self.events.iter().any(|p| p.matches(event))
    }
}

/// Endpoints disabled by their receivers: name -> what happened, and when.
pub struct Disabled {
    path: PathBuf,
    map: Mutex<BTreeMap<String, String>>,
}

impl Disabled {
    pub fn load(dir: &Path) -> Disabled {
        let path = dir.join("disabled.json");
        let map = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Disabled {
            path,
            map: Mutex::new(map),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn why(&self, name: &str) -> Option<String> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn disable(&self, name: &str, why: String) {
        let mut map = self.lock();
        map.insert(name.to_string(), why);
        self.save(&map);
    }

    pub fn enable(&self, name: &str) {
        let mut map = self.lock();
        if map.remove(name).is_some() {
            tracing::info!(endpoint = name, "webhook endpoint enabled again");
            self.save(&map);
        }
    }

    fn save(&self, map: &BTreeMap<String, String>) {
        let tmp = self.path.with_extension("json.tmp");
        let written = std::fs::write(&tmp, serde_json::to_vec(map).expect("strings serialize"))
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .and_then(|()| sync_dir(self.path.parent().unwrap_or(Path::new("."))));
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot record the disabled webhook endpoints; a restart enables them again");
        }
    }
}
