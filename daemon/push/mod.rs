//! Web Push to reviewers' browsers, tabs closed or not: the daemon's VAPID key (`vapid`),
//! the browsers' subscriptions by reviewer (`store`), and what a push says and how it is
//! encrypted for one browser (`message`). The outbox sends the pushes (`outbox/push.rs`:
//! retries, dead letters); the app decides who is owed one (`app/runtime/push.rs`).
//! The key and the subscriptions are documents (`crate::documents`): one daemon's are
//! files of `data_dir/push/`, a cluster's rows every node reads, so whichever node serves a
//! handoff pushes it to every browser its reviewers subscribed, through any node, signed
//! with the one key those browsers subscribed with.

pub mod message;
pub mod store;
pub mod vapid;

pub use message::{Action, Payload, SealError};
pub use store::{Subscription, Subscriptions};
pub use vapid::{Damage, VapidKey};

use crate::documents::Documents;
use std::path::Path;
use std::sync::Arc;

/// The `[push]` settings and the state they need.
pub struct Push {
    pub key: VapidKey,
    pub subscriptions: Subscriptions,
    /// The VAPID `sub`: how a push service's operator reaches ours (`mailto:` or `https:`).
    pub subject: String,
    /// Subscriptions may name endpoints at private addresses (a push service on the
    /// company's network, or a test's stand-in).
    pub allow_private: bool,
}

/// Why a browser's subscription is refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error(
        "endpoint: {0} (a push service's https:// URL, as PushSubscription.endpoint gives it)"
    )]
    Endpoint(String),
    #[error(transparent)]
    Keys(#[from] SealError),
}

impl Push {
    /// Opens (making on first use) the key and the subscriptions kept in `documents`;
    /// `data_dir`'s own key is offered when none is kept yet (`VapidKey::open`). Never fails:
    /// a damaged key turns Web Push off, told (`on_damage`, a log) and named (`key.damage`),
    /// and nothing else depends on it.
    pub fn open(
        documents: Arc<dyn Documents>,
        data_dir: &Path,
        subject: String,
        allow_private: bool,
        on_damage: vapid::OnDamage,
    ) -> Push {
        let key = VapidKey::open(documents.clone(), data_dir, on_damage);
        let subscriptions = Subscriptions::new(documents);
        // A node whose key was kept brings its browsers along into a cluster that has none
        // yet; another node's were made against a key no longer signed with (not carried).
        if key.own_kept() {
            match subscriptions.seed(data_dir) {
                Ok(0) => {}
                Ok(carried) => tracing::info!(
                    carried,
                    "this node's own push subscriptions kept for the cluster"
                ),
                // The file stays where it is: offered again at the next start.
                Err(e) => {
                    tracing::error!(error = %e, "this node's own push subscriptions were not carried into the cluster; offered again at the next start")
                }
            }
        }
        Push {
            key,
            subscriptions,
            subject,
            allow_private,
        }
    }

    /// A subscription of `reviewer` checked for what a push needs: an `https` endpoint
    /// (`http` only where private addresses are allowed) and keys that encrypt.
    pub fn subscription(
        &self,
        reviewer: &str,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
    ) -> Result<Subscription, SubscribeError> {
        let url = url::Url::parse(endpoint).map_err(|e| SubscribeError::Endpoint(e.to_string()))?;
        let plain = url.scheme() == "http" && self.allow_private;
        if url.scheme() != "https" && !plain {
            return Err(SubscribeError::Endpoint(format!(
                "{} is not https",
                url.scheme()
            )));
        }
        if url.host_str().is_none() || endpoint.len() > 2048 {
            return Err(SubscribeError::Endpoint("no host, or too long".into()));
        }
        message::check_keys(p256dh, auth)?;
        Ok(Subscription {
            id: store::id_of(endpoint),
            reviewer: reviewer.to_string(),
            endpoint: endpoint.to_string(),
            p256dh: p256dh.to_string(),
            auth: auth.to_string(),
            created_at: crate::clock::now_rfc3339(),
        })
    }
}
