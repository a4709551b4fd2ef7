//! Browsers' push subscriptions, by reviewer, kept as the one document
//! `push/subscriptions.json` (`crate::documents`): one daemon's is the data_dir file it
//! always was, a cluster's a row every node reads at each use, so a reviewer subscribed
//! through one node is pushed by whichever node serves the handoff, and `/reviewers` lists
//! the same subscriptions on every node. Each change (subscribe, unsubscribe, a subscription
//! the push service says is gone) is one read-modify-write under the document's lock, so two
//! nodes changing it at once lose neither's change. A subscription is its endpoint: the same
//! browser subscribing again replaces its entry rather than adding one, and a push is
//! addressed to the endpoint and the reviewer it is owed to (`address`), so a browser that
//! changed hands between a push being owed and sent is not sent another person's push. The
//! short `id` (64 bits of the endpoint's digest) is only a handle for a reviewer's own list.
//!
//! A document that is not a list of subscriptions (empty, unparsable) is damage: every read
//! and change refuses it naming where it is, and nothing is saved over it (starting anew
//! with none would silently drop every reviewer's browsers).

use crate::documents::{carry_own, Documents, Lists};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// Most subscriptions one reviewer keeps (browsers, devices); subscribing past it drops the
/// oldest.
pub const MAX_PER_REVIEWER: usize = 10;

/// The subscriptions' document (for one daemon, a path under data_dir).
pub const NAME: &str = "push/subscriptions.json";

/// One browser's subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// `sub_` and 64 bits of the endpoint's SHA-256.
    pub id: String,
    pub reviewer: String,
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key (uncompressed point), base64url.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url.
    pub auth: String,
    /// RFC 3339, UTC.
    pub created_at: String,
}

/// The id of the subscription with `endpoint`.
pub fn id_of(endpoint: &str) -> String {
    format!(
        "sub_{}",
        hex::encode(&Sha256::digest(endpoint.as_bytes())[..8])
    )
}

/// Which subscription: by its endpoint (the identity), or by the `id` shown to its reviewer.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    Endpoint(&'a str),
    Id(&'a str),
}

impl Which<'_> {
    fn is(&self, s: &Subscription) -> bool {
        match self {
            Which::Endpoint(endpoint) => s.endpoint == *endpoint,
            Which::Id(id) => s.id == *id,
        }
    }
}

/// What a push delivery is addressed to (its `to`): the whole SHA-256 of the browser's
/// endpoint and the reviewer it is owed to, `HEX/REVIEWER`. Not the endpoint itself: it is
/// the browser's capability URL, and deliveries are listed to every reviewer.
pub fn address(sub: &Subscription) -> String {
    format!(
        "{}/{}",
        hex::encode(Sha256::digest(sub.endpoint.as_bytes())),
        sub.reviewer
    )
}

/// By reviewer, oldest first.
type All = BTreeMap<String, Vec<Subscription>>;

pub struct Subscriptions {
    lists: Lists<Subscription>,
}

impl Subscriptions {
    /// The subscriptions kept in `documents`.
    pub fn new(documents: Arc<dyn Documents>) -> Subscriptions {
        let mend = "no push is sent and no subscription kept until it is mended (restore it, or delete it to start with none: reviewers then subscribe again on /reviewers)";
        Subscriptions {
            lists: Lists::new(documents, NAME, "a list of push subscriptions", mend),
        }
    }

    /// Keeps `sub` for its reviewer (replacing one of the same endpoint, whoever's it was:
    /// a browser signed in as someone else now is theirs).
    pub fn put(&self, sub: Subscription) -> io::Result<()> {
        self.lists.change(|all| {
            for subs in all.values_mut() {
                subs.retain(|s| s.endpoint != sub.endpoint);
            }
            let mine = all.entry(sub.reviewer.clone()).or_default();
            mine.push(sub.clone());
            if mine.len() > MAX_PER_REVIEWER {
                mine.remove(0);
            }
            (true, ())
        })
    }

    /// Forgets subscription `which` of `reviewer` (any reviewer's when `None`). Returns it,
    /// if it was kept.
    pub fn remove(
        &self,
        reviewer: Option<&str>,
        which: Which<'_>,
    ) -> io::Result<Option<Subscription>> {
        self.lists.change(|all| {
            let found = all
                .values()
                .flatten()
                .find(|s| which.is(s) && reviewer.is_none_or(|r| r == s.reviewer))
                .cloned();
            let Some(gone) = found else {
                return (false, None);
            };
            if let Some(subs) = all.get_mut(&gone.reviewer) {
                subs.retain(|s| s.endpoint != gone.endpoint);
            }
            (true, Some(gone))
        })
    }

    /// Keeps the subscriptions of `data_dir`'s own file when none are kept yet (a node that
    /// was one daemon, its key the one kept, joining a cluster that has no subscriptions).
    /// Answers how many it kept. Never merged into a list already kept: the node's file is
    /// not updated in a cluster, and would bring back subscriptions removed since; and offered
    /// once (`documents::carry_own`), so a row deleted to start afresh stays empty. A damaged
    /// file is set aside like a sound one, and nothing is kept from it.
    pub fn seed(&self, data_dir: &std::path::Path) -> io::Result<usize> {
        let kept = carry_own(self.lists.documents(), data_dir, NAME, |bytes| {
            let own = match serde_json::from_slice::<All>(bytes) {
                Ok(own) => own,
                Err(e) => {
                    tracing::warn!(error = %e, file = %data_dir.join(NAME).display(), "this node's own push subscriptions are not a list; none carried into the cluster");
                    return Ok(0);
                }
            };
            let mut kept = 0;
            self.lists.documents().change(NAME, &mut |now| {
                kept = 0;
                if now.is_some() {
                    return Ok(None);
                }
                kept = own.values().map(Vec::len).sum();
                Ok(Some(
                    serde_json::to_vec_pretty(&own).expect("subscriptions serialize"),
                ))
            })?;
            Ok(kept)
        })?;
        Ok(kept.unwrap_or(0))
    }

    /// `reviewer`'s subscriptions, oldest first.
    pub fn of(&self, reviewer: &str) -> io::Result<Vec<Subscription>> {
        Ok(self.lists.all()?.remove(reviewer).unwrap_or_default())
    }

    /// The subscription a push was addressed to (`address`): that endpoint, still kept for
    /// that reviewer. `None` when it is gone, or now another reviewer's (the browser changed
    /// hands), or `to` is no address (an older baton's subscription id).
    pub fn addressed(&self, to: &str) -> io::Result<Option<Subscription>> {
        let Some((_, reviewer)) = to.split_once('/') else {
            return Ok(None);
        };
        Ok(self
            .lists
            .all()?
            .remove(reviewer)
            .unwrap_or_default()
            .into_iter()
            .find(|s| address(s) == to))
    }

    /// How many are kept, everyone's.
    pub fn count(&self) -> io::Result<usize> {
        Ok(self.lists.all()?.values().map(Vec::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::{address, id_of, Subscription, Subscriptions, Which};
    use crate::documents::InDataDir;
    use std::sync::Arc;

    fn sub(reviewer: &str, endpoint: &str) -> Subscription {
        Subscription {
            id: id_of(endpoint),
            reviewer: reviewer.into(),
            endpoint: endpoint.into(),
            p256dh: "k".into(),
            auth: "a".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn open(dir: &std::path::Path) -> Subscriptions {
        Subscriptions::new(Arc::new(InDataDir::new(dir)))
    }

    #[test]
    fn subscriptions_survive_a_reopen_and_one_endpoint_is_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let subs = open(dir.path());
        subs.put(sub("rita", "https://push.example/1")).unwrap();
        subs.put(sub("rita", "https://push.example/2")).unwrap();
        // The same browser, now signed in as bob: bob's.
        subs.put(sub("bob", "https://push.example/1")).unwrap();
        let again = open(dir.path());
        assert_eq!(again.of("rita").unwrap().len(), 1);
        assert_eq!(
            again.of("bob").unwrap()[0].endpoint,
            "https://push.example/1"
        );
        let id = id_of("https://push.example/2");
        assert!(
            again.remove(Some("bob"), Which::Id(&id)).unwrap().is_none(),
            "not bob's"
        );
        assert!(again.remove(None, Which::Id(&id)).unwrap().is_some());
        assert_eq!(open(dir.path()).count().unwrap(), 1);
    }

    #[test]
    fn a_nodes_own_subscriptions_are_carried_only_into_none() {
        let (own, shared) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        open(own.path())
            .put(sub("rita", "https://push.example/1"))
            .unwrap();
        // One daemon: its file is the document, kept as it is.
        assert_eq!(open(own.path()).seed(own.path()).unwrap(), 0);
        assert_eq!(open(own.path()).count().unwrap(), 1);
        let cluster = open(shared.path());
        assert_eq!(cluster.seed(own.path()).unwrap(), 1);
        assert_eq!(cluster.of("rita").unwrap().len(), 1);
        // Removed since: a later start of the node brings nothing back.
        cluster
            .remove(None, Which::Endpoint("https://push.example/1"))
            .unwrap();
        assert_eq!(cluster.seed(own.path()).unwrap(), 0);
        assert_eq!(cluster.count().unwrap(), 0);
        // Nor once the row is deleted to start afresh: the file was offered once.
        std::fs::remove_file(shared.path().join(super::NAME)).unwrap();
        assert_eq!(cluster.seed(own.path()).unwrap(), 0);
        assert_eq!(cluster.count().unwrap(), 0);
    }

    #[test]
    fn damage_is_named_without_quoting_what_the_document_holds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(super::NAME);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, br#"{"rita": "https://push.example/SECRET"}"#).unwrap();
        let err = open(dir.path()).of("rita").unwrap_err().to_string();
        assert!(
            err.contains("not a list of push subscriptions (Data at line 1"),
            "{err}"
        );
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn two_keepers_of_one_document_lose_neither_change_and_damage_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (open(dir.path()), open(dir.path()));
        a.put(sub("rita", "https://push.example/a")).unwrap();
        b.put(sub("rita", "https://push.example/b")).unwrap();
        assert_eq!(a.of("rita").unwrap().len(), 2, "b's change seen by a");
        assert!(b
            .remove(None, Which::Endpoint("https://push.example/a"))
            .unwrap()
            .is_some());
        assert_eq!(a.count().unwrap(), 1);
        for damage in [&b""[..], b"{\"rita\": 7}"] {
            std::fs::write(dir.path().join(super::NAME), damage).unwrap();
            let err = a.of("rita").unwrap_err().to_string();
            assert!(err.contains("push/subscriptions.json: not a list"), "{err}");
            assert!(a.put(sub("rita", "https://push.example/c")).is_err());
            assert!(a
                .remove(None, Which::Id(&id_of("https://push.example/b")))
                .is_err());
            assert_eq!(std::fs::read(dir.path().join(super::NAME)).unwrap(), damage);
        }
    }

    #[test]
    fn a_push_finds_its_browser_only_while_it_is_the_same_reviewers_and_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let subs = open(dir.path());
        subs.put(sub("rita", "https://push.example/1")).unwrap();
        let to = address(&subs.of("rita").unwrap()[0]);
        assert!(
            !to.contains("push.example"),
            "the endpoint is not shown: {to}"
        );
        assert_eq!(subs.addressed(&to).unwrap().unwrap().reviewer, "rita");
        // The browser, signed in as bob now, subscribes again: rita's push finds nothing.
        subs.put(sub("bob", "https://push.example/1")).unwrap();
        assert_eq!(subs.addressed(&to).unwrap(), None);
        // Another endpoint under the same short id is another browser, not this one.
        let mut twin = sub("rita", "https://push.example/2");
        twin.id = id_of("https://push.example/1");
        subs.put(twin).unwrap();
        assert_eq!(subs.addressed(&to).unwrap(), None);
        assert_eq!(subs.count().unwrap(), 2, "the twin replaced no one");
        // An older baton's address (the short id alone) finds nothing.
        assert_eq!(
            subs.addressed(&id_of("https://push.example/1")).unwrap(),
            None
        );
    }
}
