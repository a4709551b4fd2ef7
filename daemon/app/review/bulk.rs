//! Deciding many handoffs at once (a reviewer's queue). Each key is its own decision, made by
//! `Cx::decide` with its own checks and its own event; one that fails does not stop the others.
//! An approval names, for each key, what the reviewer read (its revision, and the sha256 of
//! its content): an agent may revise a handoff between the queue's rendering and the post, and
//! that newer revision is refused, never approved unseen. The request is refused whole here
//! when an approval names a key without it; `Cx::decide` refuses such an approval again for
//! each key, as it does on every channel.

use crate::app::model::{DecideError, Decided};
use crate::app::review::decide::DecisionRequest;
use crate::app::review::Cx;
use crate::auth::Actor;
use crate::contract::decision::Via;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Most keys in one request: enough for a queue page, small enough that the request (each
/// key a durable write and an audit append) stays short.
pub const MAX_BULK: usize = 200;

/// One key's result, as `Cx::decide` gave it.
pub type KeyResult = (String, Result<Decided, DecideError>);

/// One handoff of a bulk request, with what the reviewer read of it. An approval needs
/// `revision`, and `handoff_sha256` is checked when sent (the queue page sends both, as it
/// rendered them); a newer revision in place refuses that key (409), as the single decision
/// does.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct BulkItem {
    pub key: String,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub revision: Option<u32>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub handoff_sha256: Option<String>,
}

/// A member given is a value: `null` is refused, as at the top of a request body, and not
/// read as absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

impl BulkItem {
    /// A key named with nothing of what was read (fine for any outcome but an approval).
    pub fn unbound(key: impl Into<String>) -> Self {
        BulkItem {
            key: key.into(),
            revision: None,
            handoff_sha256: None,
        }
    }

    /// Whether it names the revision it was read at (a digest alone may name content in
    /// place again at a later revision, as for the single decision: `Cx::decide` refuses an
    /// approval without it, key by key).
    fn bound(&self) -> bool {
        self.revision.is_some()
    }
}

/// Why a bulk request as a whole is refused (nothing was decided).
#[derive(Debug, thiserror::Error)]
pub enum BulkError {
    #[error("keys is empty: name at least one handoff")]
    Empty,
    #[error("{0} keys: at most {MAX_BULK} handoffs are decided in one request")]
    TooMany(usize),
    #[error("key \"{0}\" is listed twice")]
    Duplicate(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("not approved: {} named without the revision read; an approval names what the reviewer read: reload (the queue, or GET /api/v1/handoffs/{{key}}) and send each as {{\"key\", \"revision\", \"handoff_sha256\"}} in \"items\"", quoted(.0))]
    Unbound(Vec<String>),
}

/// `"a", "b"` and how many more, for a message.
fn quoted(keys: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut said: Vec<String> = keys
        .iter()
        .take(SHOWN)
        .map(|k| format!("\"{k}\""))
        .collect();
    if keys.len() > SHOWN {
        said.push(format!("{} more", keys.len() - SHOWN));
    }
    said.join(", ")
}

/// Whether `keys` can be decided in one request: some, not too many, none twice. Checked
/// for the whole request before any key is decided (in a cluster, before the keys go to the
/// nodes that serve them).
pub fn check_keys(keys: &[String]) -> Result<(), BulkError> {
    check_count(keys.len())?;
    let mut seen = HashSet::new();
    if let Some(twice) = keys.iter().find(|k| !seen.insert(k.as_str())) {
        return Err(BulkError::Duplicate(twice.clone()));
    }
    Ok(())
}

fn check_count(n: usize) -> Result<(), BulkError> {
    match n {
        0 => Err(BulkError::Empty),
        n if n > MAX_BULK => Err(BulkError::TooMany(n)),
        _ => Ok(()),
    }
}

/// Whether a bulk request can be decided at all: some items, not too many, the request's own rules
/// (`DecisionRequest::check`: a comment too long, `to_agent` with an outcome other than
/// `reassigned`), and for an approval every item bound to what was read, so that such a
/// request is refused whole, not key by key. Checked again on each node of a cluster. (A key
/// in two items is answered in the second: `decide_many`.)
pub fn check_items(items: &[BulkItem], req: &DecisionRequest) -> Result<(), BulkError> {
    check_count(items.len())?;
    // The same item twice is a request sent wrong (the document's `uniqueItems`); two
    // different items of one key are answered one by one.
    let mut seen = HashSet::new();
    if let Some(twice) = items.iter().find(|i| !seen.insert(*i)) {
        return Err(BulkError::Duplicate(twice.key.clone()));
    }
    req.check()
        .map_err(|e| BulkError::Unprocessable(e.to_string()))?;
    if req.revision.is_some() || req.handoff_sha256.is_some() {
        // They name one handoff's content; each item names its own.
        return Err(BulkError::Unprocessable(
            "revision and handoff_sha256 go with each item ({\"key\", \"revision\", \"handoff_sha256\"} in \"items\"), not with the request".into(),
        ));
    }
    if req.outcome == crate::contract::Outcome::Approved {
        let unbound: Vec<String> = items
            .iter()
            .filter(|i| !i.bound())
            .map(|i| i.key.clone())
            .collect();
        if !unbound.is_empty() {
            return Err(BulkError::Unbound(unbound));
        }
    }
    Ok(())
}

impl Cx<'_> {
    /// Decides every handoff of `items` with the same request, in order, each bound to the
    /// revision (or content) its item names; one result per key.
    pub fn decide_many(
        &self,
        items: &[BulkItem],
        req: DecisionRequest,
        actor: &Actor,
    ) -> Result<Vec<KeyResult>, BulkError> {
        self.decide_many_via(items, req, actor, Via::Api)
    }

    /// `decide_many` through channel `via` (the queue page's bulk form, or the API).
    pub fn decide_many_via(
        &self,
        items: &[BulkItem],
        req: DecisionRequest,
        actor: &Actor,
        via: Via,
    ) -> Result<Vec<KeyResult>, BulkError> {
        check_items(items, &req)?;
        let mut seen = HashSet::new();
        let results = items
            .iter()
            .map(|item| {
                if !seen.insert(item.key.as_str()) {
                    let twice = format!(
                        "key \"{}\" is listed twice: only its first item is decided",
                        item.key
                    );
                    return (item.key.clone(), Err(DecideError::Unprocessable(twice)));
                }
                // `Cx::decide` refuses (409) a key whose revision in place is not the one read.
                let req = DecisionRequest {
                    revision: item.revision,
                    handoff_sha256: item.handoff_sha256.clone(),
                    ..req.clone()
                };
                (
                    item.key.clone(),
                    self.decide_via(&item.key, req, actor, via),
                )
            })
            .collect();
        Ok(results)
    }
}
