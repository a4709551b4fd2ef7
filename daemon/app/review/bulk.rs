//! Deciding many handoffs at once (a reviewer's queue). Each key is its own decision, made by
//! `Cx::decide` with its own checks and its own event; one that fails does not stop the others.

use crate::app::model::{DecideError, Decided};
use crate::app::review::decide::DecisionRequest;
use crate::app::review::Cx;
use crate::auth::Actor;
use crate::contract::decision::Via;
use std::collections::HashSet;

/// Most keys in one request: enough for a queue page, small enough that the request (each
/// key a durable write and an audit append) stays short.
pub const MAX_BULK: usize = 200;

/// One key's result, as `Cx::decide` gave it.
pub type KeyResult = (String, Result<Decided, DecideError>);

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
}

/// Whether `keys` can be decided in one request: some, not too many, none twice. Checked
/// for the whole request before any key is decided (in a cluster, before the keys go to the
/// nodes that serve them).
pub fn check_keys(keys: &[String]) -> Result<(), BulkError> {
    if keys.is_empty() {
        return Err(BulkError::Empty);
    }
    if keys.len() > MAX_BULK {
        return Err(BulkError::TooMany(keys.len()));
    }
    let mut seen = HashSet::new();
    if let Some(twice) = keys.iter().find(|k| !seen.insert(k.as_str())) {
        return Err(BulkError::Duplicate(twice.clone()));
    }
    Ok(())
}

/// Whether a bulk request can be decided at all: `check_keys`, and the request's own rules
/// (`DecisionRequest::check`: a comment too long, `to_agent` with an outcome other than
/// `reassigned`), so that such a request is refused whole, not key by key.
fn check_request(keys: &[String], req: &DecisionRequest) -> Result<(), BulkError> {
    check_keys(keys)?;
    req.check()
        .map(|_| ())
        .map_err(|e| BulkError::Unprocessable(e.to_string()))
}

impl Cx<'_> {
    /// Decides every handoff of `keys` with the same request, in order; one result per key.
    pub fn decide_many(
        &self,
        keys: &[String],
        req: DecisionRequest,
        actor: &Actor,
    ) -> Result<Vec<KeyResult>, BulkError> {
        self.decide_many_via(keys, req, actor, Via::Api)
    }

    /// `decide_many` through channel `via` (the queue page's bulk form, or the API).
    pub fn decide_many_via(
        &self,
        keys: &[String],
        req: DecisionRequest,
        actor: &Actor,
        via: Via,
    ) -> Result<Vec<KeyResult>, BulkError> {
        check_request(keys, &req)?;
        if req.revision.is_some() || req.handoff_sha256.is_some() {
            // They name one handoff's content; applied to many they would refuse all but one.
            return Err(BulkError::Unprocessable(
                "revision and handoff_sha256 name one handoff's content; decide that one alone"
                    .into(),
            ));
        }
        let results = keys
            .iter()
            .map(|key| (key.clone(), self.decide_via(key, req.clone(), actor, via)))
            .collect();
        Ok(results)
    }
}
